import { TranslationBundle } from '@jupyterlab/translation';
import { FormComponent } from '@jupyterlab/ui-components';
import type {
  ErrorSchema,
  FieldTemplateProps,
  IconButtonProps,
  RJSFSchema,
  UiSchema
} from '@rjsf/utils';
import type { ReadonlyJSONObject } from '@lumino/coreutils';
import * as React from 'react';

import { SshpykResponseError } from '../api';
import { describeError } from '../errors';
import {
  errorSchemaFor,
  initialFormData,
  KernelFormData,
  FormMode,
  newKernelBody,
  onlyRequiredErrors,
  patchBody,
  uiSchemaFor,
  withSlurmChannels
} from '../formdata';
import { ISshpykModel } from '../tokens';
import { IFormContext } from './context';
import { FORM_FIELDS } from './slurmform';
import { FORM_WIDGETS } from './widgets';

/**
 * A field with a real `<label for>` (Lab's own template uses a heading, which
 * leaves inputs unlabelled for screen readers) and its errors below it.
 */
function FieldTemplate(props: FieldTemplateProps): JSX.Element {
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
function arrayButtons(trans: TranslationBundle) {
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

function withFills(
  data: KernelFormData,
  fills: KernelFormData
): KernelFormData {
  const next = { ...data };
  for (const [key, value] of Object.entries(fills)) {
    if ((next[key] === undefined || next[key] === '') && value) {
      next[key] = value;
    }
  }
  return next;
}

export interface IKernelFormProps {
  model: ISshpykModel;
  mode: FormMode;
  /**
   * The kernel's current settings when editing.
   */
  initial?: KernelFormData;
  onDone: (name: string) => void;
  onCancel: () => void;
  trans: TranslationBundle;
}

type Validator = (typeof import('@rjsf/validator-ajv8'))['default'];

/**
 * The schema and the validator the form needs, loaded together: the
 * validator (ajv) is only worth its weight once a user opens the form.
 */
async function loadForm(
  model: ISshpykModel
): Promise<{ schema: Record<string, any>; validator: Validator }> {
  const [schema, { default: validator }] = await Promise.all([
    model.schema(),
    import('@rjsf/validator-ajv8')
  ]);
  return { schema, validator };
}

/**
 * The Add/Edit form, rendered from the kernel model's JSON schema.
 */
export function KernelForm(props: IKernelFormProps): JSX.Element {
  const { model, mode, initial, trans } = props;
  const [loaded, setLoaded] = React.useState<{
    schema: Record<string, any>;
    validator: Validator;
  } | null>(null);
  const schema = loaded?.schema ?? null;
  const [loadError, setLoadError] = React.useState<string | null>(null);
  const [formData, setFormData] = React.useState<KernelFormData>(initial ?? {});
  const [extraErrors, setExtraErrors] = React.useState<ErrorSchema | undefined>(
    undefined
  );
  const [erroredData, setErroredData] = React.useState<string | null>(null);
  const [formError, setFormError] = React.useState<string | null>(null);
  const [busy, setBusy] = React.useState(false);
  const container = React.useRef<HTMLDivElement>(null);
  const templates = React.useMemo(
    () => ({ FieldTemplate, ButtonTemplates: arrayButtons(trans) }),
    [trans]
  );

  // Keyboard users land in the first field once the form is there.
  React.useEffect(() => {
    if (loaded) {
      container.current
        ?.querySelector<HTMLElement>(
          'input:not([type="hidden"]):not([readonly]), select, textarea'
        )
        ?.focus();
    }
  }, [loaded]);

  const onKeyDown = (event: React.KeyboardEvent) => {
    if (event.key === 'Escape' && !busy) {
      event.preventDefault();
      event.stopPropagation();
      props.onCancel();
    }
  };

  React.useEffect(() => {
    let active = true;
    loadForm(model).then(
      result => {
        if (active) {
          setFormData(data => initialFormData(result.schema, data));
          setLoaded(result);
        }
      },
      error => active && setLoadError(describeError(error))
    );
    return () => {
      active = false;
    };
  }, [model]);

  const uiSchema = React.useMemo<UiSchema>(
    () => (schema ? uiSchemaFor(schema, mode, trans) : {}),
    [schema, mode, trans]
  );

  // rjsf reports a widget's own change after the widget returns, with form
  // data that lacks the fills: keep them until that report merges them in.
  const pendingFill = React.useRef<KernelFormData>({});
  const fillEmpty = React.useCallback((values: KernelFormData) => {
    pendingFill.current = { ...pendingFill.current, ...values };
    setFormData(previous => withFills(previous, pendingFill.current));
  }, []);

  const formContext: IFormContext = {
    model,
    formData,
    fillEmpty,
    defaultFormData: {},
    trans
  };

  const title =
    mode === 'add'
      ? trans.__('Add an SSH kernel')
      : trans.__('Edit the SSH kernel');

  if (loadError) {
    return (
      <div className="jp-sshpyk-Form">
        <h3 className="jp-sshpyk-Form-title">{title}</h3>
        <p className="jp-sshpyk-Error" role="alert">
          {trans.__('Cannot load the kernel form: %1', loadError)}
        </p>
        <button
          className="jp-mod-styled jp-mod-reject"
          onClick={props.onCancel}
        >
          {trans.__('Back')}
        </button>
      </div>
    );
  }
  if (!loaded || !schema) {
    return <p className="jp-sshpyk-Muted">{trans.__('Loading the form…')}</p>;
  }

  const submit = async (data: KernelFormData) => {
    setBusy(true);
    setFormError(null);
    setExtraErrors(undefined);
    try {
      let name: string;
      if (mode === 'add') {
        name = (await model.add(newKernelBody(data))).name;
      } else {
        name = String(initial?.kernel_name);
        const patch = patchBody(schema, initial ?? {}, data);
        if (Object.keys(patch).length > 0) {
          await model.edit(name, patch);
        }
      }
      props.onDone(name);
    } catch (error) {
      const message = describeError(error);
      const field = error instanceof SshpykResponseError ? error.field : null;
      const errors = errorSchemaFor(schema, field, message);
      if (errors) {
        setExtraErrors(errors);
        setErroredData(JSON.stringify(data));
      } else {
        setFormError(message);
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <div
      className="jp-sshpyk-Form"
      data-testid="sshpyk-form"
      ref={container}
      role="region"
      aria-label={title}
      onKeyDown={onKeyDown}
    >
      <h3 className="jp-sshpyk-Form-title">{title}</h3>
      {formError && (
        <p
          className="jp-sshpyk-Error"
          role="alert"
          data-testid="sshpyk-form-error"
        >
          {formError}
        </p>
      )}
      <FormComponent
        schema={schema as RJSFSchema}
        uiSchema={uiSchema as any}
        formData={formData as ReadonlyJSONObject}
        formContext={formContext}
        validator={loaded.validator as any}
        widgets={FORM_WIDGETS}
        fields={FORM_FIELDS}
        templates={templates as any}
        extraErrors={extraErrors}
        showErrorList={false}
        transformErrors={errors =>
          onlyRequiredErrors(errors, trans.__('is required'))
        }
        noHtml5Validate
        buttonStyle="text"
        idPrefix="root"
        onChange={e => {
          const data = withSlurmChannels(
            formData,
            withFills((e.formData ?? {}) as KernelFormData, pendingFill.current)
          );
          pendingFill.current = {};
          setFormData(data);
          // A server message stays until the user changes something.
          if (erroredData !== null && JSON.stringify(data) !== erroredData) {
            setExtraErrors(undefined);
            setErroredData(null);
          }
        }}
        onSubmit={e => void submit((e.formData ?? {}) as KernelFormData)}
      >
        <div className="jp-sshpyk-Form-buttons">
          <button
            type="button"
            className="jp-mod-styled jp-mod-reject"
            onClick={props.onCancel}
            disabled={busy}
          >
            {trans.__('Cancel')}
          </button>
          <button
            type="submit"
            className="jp-mod-styled jp-mod-accept"
            data-testid="sshpyk-form-submit"
            disabled={busy}
          >
            {busy
              ? trans.__('Saving…')
              : mode === 'add'
                ? trans.__('Add')
                : trans.__('Save')}
          </button>
        </div>
      </FormComponent>
    </div>
  );
}
