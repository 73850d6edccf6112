/**
 * The kernel form's optional sections, a schema object that may be `null`
 * (`slurm`, `container`): a toggle ("Run on a Slurm compute node", "Run the
 * kernel in a container") and when it is on the members of the object,
 * rendered by rjsf from the schema like every other field (titles,
 * descriptions, the server's errors next to each). Collapsed unless on.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import type { FieldProps, RJSFSchema } from '@rjsf/utils';
import * as React from 'react';

import { IFormContext } from './context';

/**
 * What sets one section apart: its test id and the words of its toggle.
 */
interface ISection {
  /**
   * `sshpyk-<name>` on the section, `sshpyk-<name>-toggle` on its toggle.
   */
  name: string;
  toggle: (trans: TranslationBundle) => string;
}

/**
 * The field of one optional section: off is `null`, on an object that rjsf
 * fills with its members' defaults.
 */
function sectionField(section: ISection) {
  return function OptionalSectionField(props: FieldProps): JSX.Element {
    const {
      schema,
      formData,
      onChange,
      registry,
      idSchema,
      disabled,
      readonly
    } = props;
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
        // an empty title: rjsf would otherwise head the members with the key
        title: '',
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
        className="jp-sshpyk-Section"
        open={open}
        onToggle={event => setOpen((event.target as HTMLDetailsElement).open)}
        data-testid={`sshpyk-${section.name}`}
      >
        <summary className="jp-sshpyk-Field-label">
          {schema.title ?? section.name}
          {on ? ` (${trans.__('on')})` : ''}
        </summary>
        {schema.description && (
          <div className="jp-sshpyk-Field-description">
            {schema.description}
          </div>
        )}
        <label className="jp-sshpyk-Section-toggle" htmlFor={`${id}__on`}>
          <input
            id={`${id}__on`}
            type="checkbox"
            checked={on}
            disabled={disabled || readonly}
            data-testid={`sshpyk-${section.name}-toggle`}
            onChange={event => {
              onChange(event.target.checked ? {} : null);
              if (event.target.checked) {
                setOpen(true);
              }
            }}
          />{' '}
          {section.toggle(trans)}
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
  };
}

/**
 * The Slurm section: the kernel runs as a job on a compute node.
 */
export const SlurmField = sectionField({
  name: 'slurm',
  toggle: trans => trans.__('Run on a Slurm compute node')
});

/**
 * The container section: the kernel runs inside an image on the host.
 */
export const ContainerField = sectionField({
  name: 'container',
  toggle: trans => trans.__('Run the kernel in a container')
});

/**
 * The custom fields of the kernel form, by their `ui:field` name.
 */
export const FORM_FIELDS = { slurm: SlurmField, container: ContainerField };
