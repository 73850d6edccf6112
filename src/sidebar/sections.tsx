/**
 * The kernel form's Slurm section: a toggle, "Run on a Slurm compute node",
 * and when it is on the members of the schema's `slurm` object, rendered by
 * rjsf from the schema like every other field (titles, descriptions, the
 * server's errors next to each). Collapsed unless the kernel runs under Slurm.
 */
import type { FieldProps, RJSFSchema } from '@rjsf/utils';
import * as React from 'react';

import { IFormContext } from './context';

export function SlurmField(props: FieldProps): JSX.Element {
  const { schema, formData, onChange, registry, idSchema, disabled, readonly } =
    props;
  const { trans } = props.formContext as IFormContext;
  const on = typeof formData === 'object' && formData !== null;
  const [open, setOpen] = React.useState(on);
  const id = idSchema.$id;
  // the object without its null: rjsf renders its members as an object's
  const objectSchema = React.useMemo<RJSFSchema>(
    () => ({
      ...(schema as RJSFSchema),
      type: 'object',
      default: undefined,
      title: undefined,
      description: undefined
    }),
    [schema]
  );
  const { ObjectField } = registry.fields;
  // the members' own ui schema, without the field that is this one
  const uiSchema = { ...props.uiSchema };
  delete uiSchema['ui:field'];
  return (
    <details
      className="jp-sshpyk-Slurm"
      open={open}
      onToggle={event => setOpen((event.target as HTMLDetailsElement).open)}
      data-testid="sshpyk-slurm"
    >
      <summary className="jp-sshpyk-Field-label">
        {schema.title ?? trans.__('Slurm')}
        {on ? ` (${trans.__('on')})` : ''}
      </summary>
      {schema.description && (
        <div className="jp-sshpyk-Field-description">{schema.description}</div>
      )}
      <label className="jp-sshpyk-Slurm-toggle" htmlFor={`${id}__on`}>
        <input
          id={`${id}__on`}
          type="checkbox"
          checked={on}
          disabled={disabled || readonly}
          data-testid="sshpyk-slurm-toggle"
          onChange={event => {
            onChange(event.target.checked ? {} : null);
            if (event.target.checked) {
              setOpen(true);
            }
          }}
        />{' '}
        {trans.__('Run on a Slurm compute node')}
      </label>
      {on && (
        <ObjectField
          {...props}
          schema={objectSchema}
          uiSchema={uiSchema}
          formData={formData}
        />
      )}
    </details>
  );
}

/**
 * The custom fields of the kernel form, by their `ui:field` name.
 */
export const FORM_FIELDS = { slurm: SlurmField };
