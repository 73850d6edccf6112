import { TranslationBundle } from '@jupyterlab/translation';
import { FormComponent } from '@jupyterlab/ui-components';
import type {
  ErrorSchema,
  RJSFSchema,
  RJSFValidationError,
  UiSchema
} from '@rjsf/utils';
import type { ReadonlyJSONObject } from '@lumino/coreutils';
import * as React from 'react';

import { DERIVED_FIELDS, environmentBodies } from '../environments';
import { describeError } from '../errors';
import {
  clientErrors,
  errorSchemaOf,
  errorsOf,
  IFieldError,
  inAdvanced,
  summaryWords
} from '../formerrors';
import {
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
import { IFormContext, IFormLayout } from './context';
import { ErrorSummary, hasAdvancedValues, RootTemplate } from './layout';
import { chosenEnvironments, FormLogins, useShortPath } from './shortpath';
import { FORM_FIELDS } from './sections';
import { arrayButtons, FieldTemplate } from './templates';
import { FORM_WIDGETS } from './widgets';

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
  /**
   * The login flow: "Check connection" logs in through it (ssh's questions
   * in the login dialog); without it the check goes straight to discovery.
   */
  logins?: FormLogins | null;
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
 * The first invalid field's own input, in the order the form shows them (a
 * combo's typed input before its list).
 */
function firstInvalidInput(root: HTMLElement | null): HTMLElement | null {
  const field = root
    ?.querySelector('.jp-sshpyk-Field-errors')
    ?.closest('.jp-sshpyk-Field');
  return (
    field?.querySelector<HTMLElement>(
      'input[type="text"]:not([readonly]), textarea'
    ) ??
    field?.querySelector<HTMLElement>('input:not([type="hidden"]), select') ??
    null
  );
}

/**
 * The Add/Edit form, rendered from the kernel model's JSON schema: the short
 * path first (host, connection check, environments), every other field under
 * "Advanced".
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
  // what the summary names: the form's own finds and the server's
  const [ownErrors, setOwnErrors] = React.useState<IFieldError[]>([]);
  const [serverErrors, setServerErrors] = React.useState<IFieldError[]>([]);
  const [focusRequest, setFocusRequest] = React.useState(0);
  const [advancedOpen, setAdvancedOpen] = React.useState(mode === 'edit');
  const [erroredData, setErroredData] = React.useState<string | null>(null);
  const [formError, setFormError] = React.useState<string | null>(null);
  const [added, setAdded] = React.useState<string[]>([]);
  const [busy, setBusy] = React.useState(false);
  const container = React.useRef<HTMLDivElement>(null);
  const templates = React.useMemo(
    () => ({ FieldTemplate, ButtonTemplates: arrayButtons(trans) }),
    [trans]
  );
  const shortPath = useShortPath(
    model,
    props.logins,
    typeof formData.ssh_host_alias === 'string' ? formData.ssh_host_alias : '',
    typeof formData.ssh_config === 'string' && formData.ssh_config
      ? formData.ssh_config
      : null
  );
  const chosen = mode === 'add' ? chosenEnvironments(shortPath.state) : [];

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

  // After a refused submit: the first invalid field gets the focus. rjsf
  // shows the server's errors a render after it gets them: look a few times.
  React.useEffect(() => {
    if (focusRequest === 0) {
      return;
    }
    let tries = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const look = () => {
      const input = firstInvalidInput(container.current);
      if (input) {
        input.focus();
      } else if (tries++ < 20) {
        timer = setTimeout(look, 25);
      }
    };
    look();
    return () => clearTimeout(timer);
  }, [focusRequest]);

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
          if (mode === 'edit') {
            setAdvancedOpen(hasAdvancedValues(result.schema, initial ?? {}));
          }
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
    () =>
      schema
        ? {
            ...uiSchemaFor(schema, mode, trans),
            'ui:ObjectFieldTemplate': RootTemplate
          }
        : {},
    [schema, mode, trans]
  );

  // rjsf reports a widget's own change after the widget returns, with form
  // data that lacks the fills: keep them until that report merges them in.
  const pendingFill = React.useRef<KernelFormData>({});
  const fillEmpty = React.useCallback((values: KernelFormData) => {
    pendingFill.current = { ...pendingFill.current, ...values };
    setFormData(previous => withFills(previous, pendingFill.current));
  }, []);

  const layout: IFormLayout = {
    advancedOpen,
    setAdvancedOpen,
    shortPath: mode === 'add' ? shortPath : undefined
  };
  const formContext: IFormContext = {
    model,
    formData,
    fillEmpty,
    defaultFormData: {},
    trans,
    layout
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

  /**
   * Show these errors: each at its field, "Advanced" opened when one is
   * there, and the focus on the first.
   */
  const showErrors = (errors: IFieldError[]) => {
    if (inAdvanced(errors)) {
      setAdvancedOpen(true);
    }
    setFocusRequest(n => n + 1);
  };

  const save = async (data: KernelFormData): Promise<string> => {
    if (mode === 'edit') {
      const name = String(initial?.kernel_name);
      const patch = patchBody(schema, initial ?? {}, data);
      if (Object.keys(patch).length > 0) {
        await model.edit(name, patch);
      }
      return name;
    }
    if (chosen.length === 0) {
      return (await model.add(newKernelBody(data))).name;
    }
    // one kernelspec per environment, each name unique among those there
    const taken = (model.kernelspecs ?? []).map(k => k.name);
    const names: string[] = [];
    for (const body of environmentBodies(schema, data, chosen, taken)) {
      names.push((await model.add(body)).name);
      setAdded([...names]);
      shortPath.toggle(String(body.remote_python_prefix), false);
    }
    return names[0];
  };

  const submit = async (data: KernelFormData) => {
    setBusy(true);
    setFormError(null);
    setExtraErrors(undefined);
    setOwnErrors([]);
    setServerErrors([]);
    try {
      props.onDone(await save(data));
    } catch (error) {
      const { errorSchema, placed, unplaced } = errorSchemaOf(
        schema,
        errorsOf(error),
        trans
      );
      if (placed.length > 0) {
        setExtraErrors(errorSchema);
        setServerErrors(placed);
        setErroredData(JSON.stringify(data));
        showErrors(placed);
      }
      if (placed.length === 0 || unplaced.length > 0) {
        setFormError(unplaced.join(' ') || describeError(error));
      }
    } finally {
      setBusy(false);
    }
  };

  const transformErrors = (errors: RJSFValidationError[]) => {
    const required = onlyRequiredErrors(errors, trans.__('is required'));
    // an environment chosen fills these in, per environment
    return chosen.length > 0
      ? required.filter(
          e => !DERIVED_FIELDS.includes(e.params?.missingProperty)
        )
      : required;
  };

  const summary = [...ownErrors, ...serverErrors];

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
      {added.length > 0 && (
        <p className="jp-sshpyk-FieldNote" role="status">
          {trans.__('Added: %1', added.join(', '))}
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
        transformErrors={transformErrors}
        onError={errors => {
          const found = clientErrors(errors);
          setOwnErrors(found);
          setServerErrors([]);
          showErrors(found);
        }}
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
            setServerErrors([]);
            setErroredData(null);
          }
        }}
        onSubmit={e => void submit((e.formData ?? {}) as KernelFormData)}
      >
        <div className="jp-sshpyk-Form-buttons">
          <ErrorSummary
            text={
              summary.length > 0 ? summaryWords(schema, summary, trans) : null
            }
            trans={trans}
          />
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
              : mode === 'edit'
                ? trans.__('Save')
                : chosen.length > 1
                  ? trans.__('Add %1 kernels', chosen.length)
                  : trans.__('Add')}
          </button>
        </div>
      </FormComponent>
    </div>
  );
}
