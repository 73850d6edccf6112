/**
 * The kernel form's templates: each field with a real label and its errors
 * below it, and the array buttons as labelled text buttons.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import type { FieldTemplateProps, IconButtonProps } from '@rjsf/utils';
import * as React from 'react';

/**
 * A field with a real `<label for>` (Lab's own template uses a heading, which
 * leaves inputs unlabelled for screen readers) and its errors below it.
 */
export function FieldTemplate(props: FieldTemplateProps): JSX.Element {
  const {
    id,
    label,
    required,
    displayLabel,
    rawErrors,
    children,
    schema,
    rawDescription,
    hidden,
    classNames
  } = props;
  if (hidden) {
    return <div className="jp-sshpyk-hidden">{children}</div>;
  }
  // an optional object or list (`["object", "null"]`) is a container too
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  const isContainer = types.includes('object') || types.includes('array');
  const name = id.replace(/^root_?/, '') || 'root';
  return (
    <div
      className={`jp-sshpyk-Field ${classNames ?? ''}`}
      data-testid={`sshpyk-field-${name}`}
    >
      {displayLabel && !isContainer && label && (
        <label htmlFor={id} className="jp-sshpyk-Field-label">
          {label}
          {required && (
            <span className="jp-sshpyk-Field-required" aria-hidden="true">
              {' *'}
            </span>
          )}
        </label>
      )}
      {children}
      {!isContainer && rawDescription && (
        <div className="jp-sshpyk-Field-description" id={`${id}__description`}>
          {rawDescription}
        </div>
      )}
      {rawErrors && rawErrors.length > 0 && (
        <ul
          className="jp-sshpyk-Field-errors"
          role="alert"
          data-testid={`sshpyk-error-${name}`}
        >
          {rawErrors.map(error => (
            <li key={error}>{error}</li>
          ))}
        </ul>
      )}
    </div>
  );
}

/**
 * The array buttons (the mount rows) as labelled text buttons: rjsf's own
 * show icon-font glyphs that Lab does not load, i.e. empty boxes.
 */
export function arrayButtons(trans: TranslationBundle) {
  const button =
    (text: string, className: string) =>
    (props: IconButtonProps): JSX.Element => (
      <button
        type="button"
        className={`jp-mod-styled ${className} jp-sshpyk-ArrayButton`}
        onClick={props.onClick}
        disabled={props.disabled}
      >
        {text}
      </button>
    );
  return {
    AddButton: button(trans.__('Add'), 'jp-mod-accept'),
    RemoveButton: button(trans.__('Remove'), 'jp-mod-warn'),
    MoveUpButton: button(trans.__('Move up'), 'jp-mod-reject'),
    MoveDownButton: button(trans.__('Move down'), 'jp-mod-reject'),
    CopyButton: button(trans.__('Copy'), 'jp-mod-reject')
  };
}
