/**
 * The kernel form's layout: the short path first (the host, then, when
 * adding, the connection check and the environments), every other field of
 * the schema under "Advanced", rendered by rjsf like the rest; and the error
 * summary beside the submit button.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import type { ObjectFieldTemplateProps } from '@rjsf/utils';
import * as React from 'react';

import { SHORT_FIELDS } from '../formerrors';
import { IFormContext } from './context';
import { ShortPath } from './shortpath';

/**
 * The root object of the form: the short fields, the short path, then the
 * rest under "Advanced".
 */
export function RootTemplate(props: ObjectFieldTemplateProps): JSX.Element {
  const ctx = props.formContext as IFormContext;
  const { trans } = ctx;
  const layout = ctx.layout;
  const short = props.properties.filter(p => SHORT_FIELDS.includes(p.name));
  const rest = props.properties.filter(p => !SHORT_FIELDS.includes(p.name));
  const alias =
    typeof ctx.formData.ssh_host_alias === 'string'
      ? ctx.formData.ssh_host_alias
      : '';
  return (
    <div className="jp-sshpyk-FormLayout">
      {short.map(p => (
        <React.Fragment key={p.name}>{p.content}</React.Fragment>
      ))}
      {layout?.shortPath && (
        <ShortPath
          alias={alias}
          state={layout.shortPath.state}
          onCheck={layout.shortPath.check}
          onToggle={layout.shortPath.toggle}
          disabled={props.disabled || props.readonly}
          trans={trans}
        />
      )}
      <details
        className="jp-sshpyk-Advanced"
        open={layout?.advancedOpen ?? true}
        onToggle={event =>
          layout?.setAdvancedOpen((event.target as HTMLDetailsElement).open)
        }
        data-testid="sshpyk-advanced"
      >
        <summary
          className="jp-sshpyk-Advanced-summary"
          data-testid="sshpyk-advanced-toggle"
        >
          {trans.__('Advanced')}
        </summary>
        {rest.map(p => (
          <React.Fragment key={p.name}>{p.content}</React.Fragment>
        ))}
      </details>
    </div>
  );
}

/**
 * The summary beside the submit button.
 */
export function ErrorSummary(props: {
  text: string | null;
  trans: TranslationBundle;
}): JSX.Element | null {
  if (!props.text) {
    return null;
  }
  return (
    <p
      className="jp-sshpyk-Form-summary jp-sshpyk-Error"
      role="alert"
      data-testid="sshpyk-form-summary"
    >
      {props.text}
    </p>
  );
}

/**
 * Whether a kernel being edited has anything set beyond the short fields (it
 * then opens with "Advanced" open, so what is set is in view).
 */
export function hasAdvancedValues(
  schema: Record<string, any>,
  data: Record<string, unknown>
): boolean {
  return Object.entries<any>(schema.properties ?? {}).some(([key, rule]) => {
    if (SHORT_FIELDS.includes(key)) {
      return false;
    }
    const value = data[key];
    if (value === undefined || value === null || value === '') {
      return false;
    }
    return JSON.stringify(value) !== JSON.stringify(rule.default);
  });
}
