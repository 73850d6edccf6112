/**
 * The Python environments of a host (`GET <base_url>/sshpyk/hosts/{alias}/
 * environments`) and what the Add form's short path makes of them: one
 * kernelspec body per chosen environment, with a name derived from the host
 * and the environment, unique among the kernelspecs that exist.
 */
import { ServerConnection } from '@jupyterlab/services';

import { requestAPI } from './request';
import { KernelFormData, newKernelBody } from './formdata';

/**
 * The discovery route below `<base_url>/sshpyk/` (kept apart from `ROUTES`
 * until the committed OpenAPI document has it).
 */
export const ENVIRONMENTS_ROUTE = 'hosts/{alias}/environments';

/**
 * One Python environment found on a host.
 */
export interface IEnvironment {
  prefix: string;
  kind: 'conda' | 'venv' | 'module' | 'system';
  name: string;
  /** its Python's version, e.g. 3.11.2 */
  python: string | null;
  ipykernel: boolean;
  jupyter_client: boolean;
  /** the module that provides it (`module load` it first) */
  module: string | null;
  error: string | null;
}

/**
 * Every environment of a host; `errors` says what could not be looked at.
 */
export interface IEnvironments {
  environments: IEnvironment[];
  errors: string[];
}

/**
 * The Python environments of a host: connects to it (the host's master) and
 * runs programs there, hence a POST; the ssh config goes in the body, never
 * in a query.
 *
 * @throws {SshpykResponseError} 400 for a bad alias or ssh config, 502 when
 *   the host cannot be reached
 */
export async function discoverEnvironments(
  serverSettings: ServerConnection.ISettings,
  alias: string,
  sshConfig?: string | null
): Promise<IEnvironments> {
  const data = await requestAPI<Partial<IEnvironments>>(
    ENVIRONMENTS_ROUTE.replace('{alias}', encodeURIComponent(alias)),
    serverSettings,
    {
      method: 'POST',
      body: JSON.stringify(sshConfig ? { ssh_config: sshConfig } : {})
    }
  );
  return {
    environments: data?.environments ?? [],
    errors: data?.errors ?? []
  };
}

/**
 * Whether a kernel can start in this environment (the launcher needs
 * ipykernel there, and jupyter_client, which ipykernel brings).
 */
export function isUsable(env: IEnvironment): boolean {
  return env.ipykernel && !env.error;
}

/**
 * The command that makes an environment usable.
 */
export function pipHint(env: IEnvironment): string {
  if (env.kind === 'system') {
    // Debian's /usr has only bin/python3, and its pip refuses (PEP 668)
    return 'apt install python3-ipykernel, or a venv: python3 -m venv ~/jupyter-env && ~/jupyter-env/bin/pip install ipykernel';
  }
  return `${env.prefix}/bin/python -m pip install ipykernel`;
}

/**
 * The host as a user names it: `user@host` shows as `host`.
 */
export function hostWords(alias: string): string {
  const at = alias.lastIndexOf('@');
  return at >= 0 ? alias.slice(at + 1) : alias;
}

/**
 * A kernel name for the schema's `^[a-z0-9._-]+$`, not among `taken`.
 */
export function uniqueKernelName(
  alias: string,
  envName: string,
  taken: ReadonlySet<string>
): string {
  const base = `ssh-${hostWords(alias)}-${envName}`
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/-$/, '')
    .slice(0, 90);
  let name = base;
  for (let i = 2; taken.has(name); i++) {
    name = `${base}-${i}`;
  }
  return name;
}

/**
 * One word for a POSIX shell: a module's name is the host's word, and the
 * prelude runs in a shell.
 */
export function shellWord(text: string): string {
  return /^[A-Za-z0-9_./+@%:=-]+$/.test(text)
    ? text
    : `'${text.replace(/'/g, "'\"'\"'")}'`;
}

/**
 * The `POST /sshpyk/kernelspecs` bodies for the chosen environments: the
 * form's own values (the Advanced fields) for each, the environment's prefix,
 * and a name and display name per environment. A name or display name typed
 * in the form is used when only one environment is chosen.
 *
 * @param schema the kernel schema (its `prelude`, when it has one, starts
 *   with the `module load` of a module's environment)
 */
export function environmentBodies(
  schema: Record<string, any>,
  data: KernelFormData,
  envs: readonly IEnvironment[],
  taken: Iterable<string>
): KernelFormData[] {
  const names = new Set(taken);
  const base = newKernelBody(data);
  const alias = String(base.ssh_host_alias ?? '');
  const one = envs.length === 1;
  return envs.map(env => {
    const kernelName =
      one && base.kernel_name
        ? String(base.kernel_name)
        : uniqueKernelName(alias, env.name, names);
    names.add(kernelName);
    const body: KernelFormData = {
      ...base,
      remote_python_prefix: env.prefix,
      remote_kernel_name: base.remote_kernel_name ?? 'python3',
      language: base.language ?? 'python',
      display_name:
        one && base.display_name
          ? base.display_name
          : `Python (${env.name}) on ${hostWords(alias)}`,
      kernel_name: kernelName
    };
    // a module's python runs once the module is loaded: its line comes first
    if (env.module && schema.properties?.prelude) {
      const line = `module load ${shellWord(env.module)}`;
      const lines = Array.isArray(body.prelude) ? body.prelude : [];
      body.prelude = lines.includes(line) ? lines : [line, ...lines];
    }
    return body;
  });
}

/**
 * The fields the short path fills in per environment: not required of the
 * user while an environment is chosen.
 */
export const DERIVED_FIELDS = [
  'kernel_name',
  'display_name',
  'language',
  'remote_python_prefix',
  'remote_kernel_name'
];
