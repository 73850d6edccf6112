/**
 * The typed client of the sshpyk server extension's REST API
 * (`<base_url>/sshpyk/...`, described by `GET /sshpyk/openapi.json`).
 *
 * Every call goes through the one request function of `request.ts`: JSON
 * replies through `requestAPI`, the streamed (NDJSON) check through
 * `requestLines`. A jest test (`openapi.spec.ts`) holds every route called
 * here, and the state vocabularies of `states.ts`, against the committed
 * OpenAPI document.
 */
import { ServerConnection } from '@jupyterlab/services';

import { requestAPI, requestLines } from './request';
import type { ISlurmStatus } from './slurm/api';
import { CheckStatus, MountState, TunnelState } from './states';

export {
  API_NAMESPACE,
  requestAPI,
  requestLines,
  SshpykResponseError
} from './request';
export {
  CHECK_STATUSES,
  LOGIN_STATES,
  MOUNT_STATES,
  SLURM_JOB_STATES,
  TUNNEL_STATES
} from './states';
export type {
  CheckStatus,
  LoginState,
  MountState,
  SlurmJobState,
  TunnelState
} from './states';

/**
 * Every route this client calls, below `<base_url>/sshpyk/`, spelled as the
 * OpenAPI document's `paths` spell them (`{…}` is a path parameter).
 */
export const ROUTES = {
  kernelspecs: 'kernelspecs',
  kernelspec: 'kernelspecs/{name}',
  kernelspecCheck: 'kernelspecs/{name}/check',
  hosts: 'hosts',
  hostKernelspecs: 'hosts/{alias}/kernelspecs',
  status: 'status',
  orphans: 'orphans',
  orphan: 'orphans/{kernel_id}',
  orphanAttach: 'orphans/{kernel_id}/attach',
  version: 'version',
  openapi: 'openapi.json'
} as const;

/**
 * A route of `ROUTES` with its path parameters filled in (URL-encoded).
 *
 * @throws {Error} when a parameter the route names is not given
 */
export function route(
  template: (typeof ROUTES)[keyof typeof ROUTES],
  params: Record<string, string> = {}
): string {
  return template.replace(/\{([^}]+)\}/g, (_, key: string) => {
    if (!(key in params)) {
      throw new Error(`sshpyk: route ${template} needs ${key}`);
    }
    return encodeURIComponent(params[key]);
  });
}
function json(method: string, body?: unknown): RequestInit {
  return body === undefined
    ? { method }
    : { method, body: JSON.stringify(body) };
}

/**
 * The items of a `GET` that answers `{kernels: [...]}`.
 */
async function getKernelsList<T>(
  endPoint: string,
  serverSettings: ServerConnection.ISettings
): Promise<T[]> {
  const data = await requestAPI<{ kernels?: T[] }>(
    endPoint,
    serverSettings,
    json('GET')
  );
  return data.kernels ?? [];
}

/**
 * Reply of `GET <base_url>/sshpyk/version`.
 */
export interface IVersionInfo {
  version: string;
}

/**
 * Ask the server extension for its version.
 *
 * @throws as `requestAPI` does, and an `Error` when the reply has no version
 */
export async function getVersion(
  serverSettings: ServerConnection.ISettings
): Promise<IVersionInfo> {
  const data = await requestAPI<IVersionInfo>(ROUTES.version, serverSettings, {
    method: 'GET'
  });
  if (typeof data?.version !== 'string') {
    throw new Error(
      'sshpyk server extension sent an unexpected reply to /sshpyk/version'
    );
  }
  return data;
}

/**
 * The SSH kernel model (`components.schemas.SSHKernel`): what the form edits.
 * Only the fields this code reads by name are typed; the rest come from the
 * schema.
 */
export interface ISSHKernelConfig {
  kernel_name: string;
  display_name: string;
  language: string;
  ssh_host_alias: string;
  remote_python_prefix: string;
  remote_kernel_name: string;
  ssh_config?: string | null;
  [key: string]: unknown;
}

/**
 * One kernelspec as `GET /sshpyk/kernelspecs` lists it (local ones
 * included; `config` only for SSH ones).
 */
export interface IKernelspecEntry {
  name: string;
  ssh: boolean;
  resource_dir?: string;
  config?: ISSHKernelConfig;
  display_name?: string | null;
  language?: string | null;
  error?: { message: string; field?: string | null };
}

/**
 * One health check result.
 */
export interface ICheck {
  id: string;
  title: string;
  status: CheckStatus;
  value?: string;
  hint?: string;
}

/**
 * A Host of the ssh config as `ssh -G` resolves it.
 */
export interface IHost {
  alias: string;
  hostname?: string;
  user?: string;
  port?: number;
  proxyjump?: string | null;
  error?: string;
}

/**
 * The hosts of one ssh config (`ssh_config` is the file read).
 */
export interface IHostList {
  ssh_config: string;
  hosts: IHost[];
}

/**
 * A kernelspec found in a remote environment.
 */
export interface IRemoteKernelspec {
  name: string;
  display_name?: string;
  language?: string;
  error?: string;
  [key: string]: unknown;
}

/**
 * The kernelspecs of one remote environment.
 */
export interface IRemoteKernelspecs {
  alias: string;
  remote_python_prefix: string;
  python?: string;
  kernelspecs: IRemoteKernelspec[];
}

/**
 * One running SSH kernel and its tunnel.
 */
export interface ITunnelStatus {
  kernel_id: string;
  kernelspec: string;
  host_alias: string;
  /** the kernelspec's ssh config file: with the alias, what a login needs */
  ssh_config?: string | null;
  state: TunnelState;
  step: string | null;
  since: number;
  rtt_ms: number | null;
  remote_hostname?: string | null;
  mounts?: IMountStatus[];
  /** only for a kernel that runs as a Slurm job */
  slurm?: ISlurmStatus | null;
}

/**
 * One SSHFS mount of a running SSH kernel.
 */
export interface IMountStatus {
  local_path: string;
  remote_path: string;
  state: MountState;
  since: number;
  error: string | null;
  mounts: number;
}

/**
 * An SSH kernel still running whose Jupyter server is gone, with what its host
 * says about it now.
 */
export interface IOrphan {
  kernel_id: string;
  kernelspec: string;
  display_name: string;
  host_alias: string;
  started_at: number;
  server_pid: number;
  alive: boolean;
  attached: boolean;
  reachable: boolean;
  lease_age: number | null;
  error: string | null;
  /**
   * The host its run dir names, and whether that is another host sharing the
   * home directory (then sshpyk never signals or removes it from here).
   */
  on_host?: string | null;
  elsewhere?: boolean;
  config: { lease_timeout?: number } & Record<string, unknown>;
}

/**
 * The SSH kernel model's JSON schema, as the server validates with it (read
 * from the OpenAPI document).
 *
 * @throws as `requestAPI` does, and an `Error` when the document has no
 *   `SSHKernel` schema
 */
export async function getKernelSchema(
  serverSettings: ServerConnection.ISettings
): Promise<Record<string, any>> {
  const doc = await requestAPI<any>(ROUTES.openapi, serverSettings, {
    method: 'GET'
  });
  const schema = doc?.components?.schemas?.SSHKernel;
  if (typeof schema !== 'object' || schema === null) {
    throw new Error('sshpyk: the OpenAPI document has no SSHKernel schema');
  }
  return schema;
}

/**
 * Every kernelspec Jupyter knows, local ones included (`ssh` tells them
 * apart); an SSH one whose file is broken carries `error`.
 *
 * @throws as `requestAPI` does
 */
export function listKernelspecs(
  serverSettings: ServerConnection.ISettings
): Promise<IKernelspecEntry[]> {
  return getKernelsList(ROUTES.kernelspecs, serverSettings);
}

/**
 * Add an SSH kernelspec; resolves with its entry.
 *
 * @param config the SSH kernel model (empty optional fields left out)
 * @throws {SshpykResponseError} 400 with the `field` of an invalid value, 409
 *   when the name is taken
 */
export function addKernelspec(
  serverSettings: ServerConnection.ISettings,
  config: Record<string, unknown>
): Promise<IKernelspecEntry> {
  return requestAPI(ROUTES.kernelspecs, serverSettings, json('POST', config));
}

/**
 * Edit an SSH kernelspec: a partial edit, where `null` puts an optional field
 * back to its default. Resolves with the new entry.
 *
 * @throws {SshpykResponseError} 400 with the `field` of an invalid value, 404
 *   when there is no such kernelspec, 422 when it is not an SSH one
 */
export function editKernelspec(
  serverSettings: ServerConnection.ISettings,
  name: string,
  patch: Record<string, unknown>
): Promise<IKernelspecEntry> {
  return requestAPI(
    route(ROUTES.kernelspec, { name }),
    serverSettings,
    json('PATCH', patch)
  );
}

/**
 * Delete an SSH kernelspec (running kernels keep running).
 *
 * @throws {SshpykResponseError} 404 when there is no such kernelspec, 422
 *   when it is not an SSH one
 */
export async function deleteKernelspec(
  serverSettings: ServerConnection.ISettings,
  name: string
): Promise<void> {
  await requestAPI(
    route(ROUTES.kernelspec, { name }),
    serverSettings,
    json('DELETE')
  );
}

/**
 * Run every health check of an SSH kernelspec, calling `onCheck` as each one
 * finishes (the server streams NDJSON), and resolve with the overall verdict.
 *
 * @throws {SshpykResponseError} when the run cannot start (404, 422 for a
 *   local kernel), and an `Error` when the stream ends before its summary
 */
export async function checkKernelspec(
  serverSettings: ServerConnection.ISettings,
  name: string,
  onCheck: (check: ICheck) => void
): Promise<boolean> {
  let ok: boolean | null = null;
  await requestLines(
    `${route(ROUTES.kernelspecCheck, { name })}?stream=1`,
    serverSettings,
    { method: 'POST' },
    message => {
      if (message.check) {
        onCheck(message.check as ICheck);
      } else if (message.done) {
        ok = Boolean(message.ok);
      }
    }
  );
  if (ok === null) {
    throw new Error(`The check of ${name} ended before its summary line.`);
  }
  return ok;
}

/**
 * The host aliases of an ssh config: the server user's default one by GET, a
 * named one by POST (a config can run programs, so naming one is never a GET).
 *
 * @throws {SshpykResponseError} 400 for an ssh config that cannot be used
 */
export async function listHosts(
  serverSettings: ServerConnection.ISettings,
  sshConfig?: string | null
): Promise<IHostList> {
  return requestAPI(
    ROUTES.hosts,
    serverSettings,
    sshConfig ? json('POST', { ssh_config: sshConfig }) : json('GET')
  );
}

/**
 * The kernelspecs of a remote environment: connects to the host and runs the
 * prefix's python there, hence a POST.
 *
 * @throws {SshpykResponseError} 400 for a bad prefix or ssh config, 502 when
 *   the host or its Python cannot be reached
 */
export async function discoverKernelspecs(
  serverSettings: ServerConnection.ISettings,
  alias: string,
  remotePythonPrefix: string,
  sshConfig?: string | null
): Promise<IRemoteKernelspecs> {
  const body: Record<string, string> = {
    remote_python_prefix: remotePythonPrefix
  };
  if (sshConfig) {
    body.ssh_config = sshConfig;
  }
  return requestAPI(
    route(ROUTES.hostKernelspecs, { alias }),
    serverSettings,
    json('POST', body)
  );
}

/**
 * The SSH kernels left running by a Jupyter server that is gone, each with
 * what its host says about it now (the server asks every host: this can take
 * a few seconds).
 *
 * @throws as `requestAPI` does
 */
export function listOrphans(
  serverSettings: ServerConnection.ISettings
): Promise<IOrphan[]> {
  return getKernelsList(ROUTES.orphans, serverSettings);
}

/**
 * Make an orphan one of this server's kernels again; resolves with its
 * `/api/kernels` model.
 *
 * @throws {SshpykResponseError} 404 when it is gone, 409 when another server
 *   holds it, 502 when its host cannot be reached
 */
export function attachOrphan(
  serverSettings: ServerConnection.ISettings,
  kernelId: string
): Promise<{ id: string; name: string }> {
  return requestAPI(
    route(ROUTES.orphanAttach, { kernel_id: kernelId }),
    serverSettings,
    json('POST', {})
  );
}

/**
 * Shut an orphan down on its host (what it holds in memory is lost).
 *
 * @throws {SshpykResponseError} 404 when it is gone, 409 when another server
 *   holds it, 502 when its host cannot be reached
 */
export async function shutDownOrphan(
  serverSettings: ServerConnection.ISettings,
  kernelId: string
): Promise<void> {
  await requestAPI(
    route(ROUTES.orphan, { kernel_id: kernelId }),
    serverSettings,
    json('DELETE')
  );
}

/**
 * The running SSH kernels of this server and the state of their tunnels (the
 * server pings each: poll it, don't hammer it).
 *
 * @throws as `requestAPI` does
 */
export function getTunnelStatus(
  serverSettings: ServerConnection.ISettings
): Promise<ITunnelStatus[]> {
  return getKernelsList(ROUTES.status, serverSettings);
}
