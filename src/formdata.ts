import { nullTranslator, TranslationBundle } from '@jupyterlab/translation';
import type { RJSFValidationError, UiSchema } from '@rjsf/utils';

/**
 * The order fields appear in: the order a user fills them in (the ssh config
 * decides which hosts exist, the host and prefix which remote kernels exist).
 * `*` keeps any field the schema gains later.
 */
export const FIELD_ORDER = [
  'ssh_config',
  'ssh_host_alias',
  'remote_python_prefix',
  'remote_kernel_name',
  'display_name',
  'kernel_name',
  'language',
  'slurm',
  'mount_local_on_remote',
  'remote_cwd',
  'env',
  'prelude',
  'container',
  '*'
];

/**
 * Examples shown in the empty Slurm fields.
 */
const SLURM_PLACEHOLDERS: Record<string, string> = {
  partition: 'gpu',
  time: '8:00:00',
  mem: '16G',
  gpus: '1',
  constraint: 'intel&gpu'
};

export type FormMode = 'add' | 'edit';

/**
 * The values of the SSH kernel form (not the DOM's `FormData`).
 */
export type KernelFormData = Record<string, unknown>;

/**
 * How the form renders the schema: only presentation, never a field of its
 * own, so the schema stays the one source of truth.
 */
export function uiSchemaFor(
  schema: Record<string, any>,
  mode: FormMode,
  trans: TranslationBundle = nullTranslator.load('sshpyk')
): UiSchema {
  const props: Record<string, unknown> = schema.properties ?? {};
  const ui: UiSchema = {
    'ui:order': FIELD_ORDER.filter(k => k === '*' || k in props)
  };
  if ('ssh_host_alias' in props) {
    ui.ssh_host_alias = { 'ui:widget': 'hostAlias' };
  }
  if ('remote_kernel_name' in props) {
    ui.remote_kernel_name = { 'ui:widget': 'remoteKernel' };
  }
  if ('kernel_name' in props) {
    ui.kernel_name = {
      'ui:readonly': mode === 'edit',
      'ui:help':
        mode === 'edit'
          ? trans.__('The kernel name cannot change; add a new kernel instead.')
          : undefined
    };
  }
  if ('mount_local_on_remote' in props) {
    ui.mount_local_on_remote = {
      'ui:options': { orderable: false },
      items: {
        'ui:classNames': 'jp-sshpyk-MountRow',
        'ui:title': trans.__('Mount')
      }
    };
  }
  if ('slurm' in props) {
    const members: Record<string, unknown> =
      (props.slurm as Record<string, any>).properties ?? {};
    const slurm: UiSchema = { 'ui:field': 'slurm' };
    for (const [key, placeholder] of Object.entries(SLURM_PLACEHOLDERS)) {
      if (key in members) {
        slurm[key] = { 'ui:placeholder': placeholder };
      }
    }
    if ('sbatch_options' in members) {
      slurm.sbatch_options = {
        'ui:options': { orderable: false },
        items: {
          'ui:title': trans.__('Option'),
          'ui:placeholder': '--gres=gpu:1'
        }
      };
    }
    ui.slurm = slurm;
  }
  if ('container' in props) {
    const members: Record<string, unknown> =
      (props.container as Record<string, any>).properties ?? {};
    const container: UiSchema = { 'ui:field': 'container' };
    if ('options' in members) {
      container.options = {
        'ui:options': { orderable: false },
        items: { 'ui:title': trans.__('Option'), 'ui:placeholder': '--nv' }
      };
    }
    ui.container = container;
  }
  return ui;
}

/**
 * The form's first data: an optional object field whose default is `null`
 * (`slurm`, `container`) starts as `null`. Left out, rjsf would fill it with its members'
 * defaults, i.e. turn it on.
 */
export function initialFormData(
  schema: Record<string, any>,
  data: KernelFormData
): KernelFormData {
  const out = { ...data };
  for (const [key, rule] of Object.entries<any>(schema.properties ?? {})) {
    const types = Array.isArray(rule.type) ? rule.type : [rule.type];
    if (
      types.includes('object') &&
      rule.default === null &&
      out[key] === undefined
    ) {
      out[key] = null;
    }
  }
  return out;
}

/**
 * Whether the kernel runs under Slurm in this form data.
 */
export function isSlurm(data: KernelFormData): boolean {
  return typeof data.slurm === 'object' && data.slurm !== null;
}

/**
 * Turning Slurm on turns relay channels on: a kernel on a compute node is
 * reached through its job, never over a forwarded port.
 */
export function withSlurmChannels(
  previous: KernelFormData,
  next: KernelFormData
): KernelFormData {
  if (isSlurm(next) && !isSlurm(previous) && next.channels !== 'relay') {
    return { ...next, channels: 'relay' };
  }
  return next;
}

/**
 * Split a server field name (`mount_local_on_remote[0].local_path`) into the
 * path rjsf keys its error schema with.
 */
export function fieldPath(field: string): string[] {
  return field
    .replace(/\[(\d+)\]/g, '.$1')
    .split('.')
    .filter(part => part.length > 0);
}

/**
 * The server prefixes messages with the field name (`field: message`); next
 * to the field that prefix is noise.
 */
export function fieldMessage(field: string, message: string): string {
  const prefix = `${field}: `;
  return message.startsWith(prefix) ? message.slice(prefix.length) : message;
}

function isEmpty(value: unknown): boolean {
  return value === undefined || value === null || value === '';
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A nested object (`slurm`, `container`) without its empty members: the server applies
 * their defaults, and an unchanged object compares equal to the server's.
 */
function compact(value: unknown): unknown {
  if (!isPlainObject(value)) {
    return value;
  }
  const out: Record<string, unknown> = {};
  for (const [key, member] of Object.entries(value)) {
    if (!isEmpty(member)) {
      out[key] = member;
    }
  }
  return out;
}

/**
 * The body of `POST /sshpyk/kernelspecs`: empty optional fields are left out so
 * the server applies its defaults.
 */
export function newKernelBody(data: KernelFormData): KernelFormData {
  const body: KernelFormData = {};
  for (const [key, value] of Object.entries(data)) {
    if (!isEmpty(value)) {
      body[key] = compact(value);
    }
  }
  return body;
}

/**
 * The body of `PATCH /sshpyk/kernelspecs/{name}`: only what changed, with `null`
 * for a field the user emptied (the server then restores its default).
 */
export function patchBody(
  schema: Record<string, any>,
  original: KernelFormData,
  edited: KernelFormData
): KernelFormData {
  const patch: KernelFormData = {};
  for (const key of Object.keys(schema.properties ?? {})) {
    if (key === 'kernel_name') {
      continue;
    }
    const before = isEmpty(original[key]) ? null : compact(original[key]);
    const after = isEmpty(edited[key]) ? null : compact(edited[key]);
    if (JSON.stringify(before) !== JSON.stringify(after)) {
      patch[key] = after;
    }
  }
  return patch;
}

/**
 * A kernel name derived from the host and the remote kernel, valid for the
 * schema's `^[a-z0-9._-]+$`.
 */
export function suggestKernelName(alias: string, remoteKernel: string): string {
  return `ssh-${alias}-${remoteKernel}`
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/-+/g, '-')
    .slice(0, 100);
}

/**
 * Client-side, only missing fields are reported (at once, all of them); every
 * other rule is left to the server, whose messages say what is wrong in words
 * ("must be absolute or start with '~/'") rather than as a regular expression.
 */
export function onlyRequiredErrors(
  errors: RJSFValidationError[],
  message = 'is required'
): RJSFValidationError[] {
  return errors
    .filter(e => e.name === 'required')
    .map(e => ({ ...e, message }));
}
