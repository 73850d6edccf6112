import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/**
 * The REST namespace of the sshpyk server extension (`<base_url>/sshpyk/...`).
 */
export const API_NAMESPACE = 'sshpyk';

/**
 * Reply of `GET <base_url>/sshpyk/version`.
 */
export interface IVersionInfo {
  version: string;
}

/**
 * Call the sshpyk server extension and return the JSON body.
 *
 * Going through `ServerConnection.makeRequest` with the application's server
 * settings (rather than `fetch` or `makeSettings()`) is what adds the base URL,
 * token and XSRF header the server expects.
 *
 * @param endPoint path below `<base_url>/sshpyk/`
 * @param serverSettings usually `app.serviceManager.serverSettings`
 * @param init request options (method, body, ...)
 * @throws {ServerConnection.NetworkError} when the server cannot be reached
 * @throws {ServerConnection.ResponseError} on a non-2xx reply, carrying the
 *   server's `message` when the body is JSON
 */
export async function requestAPI<T>(
  endPoint: string,
  serverSettings: ServerConnection.ISettings,
  init: RequestInit = {}
): Promise<T> {
  const requestUrl = URLExt.join(
    serverSettings.baseUrl,
    API_NAMESPACE,
    endPoint
  );

  let response: Response;
  try {
    response = await ServerConnection.makeRequest(
      requestUrl,
      init,
      serverSettings
    );
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }

  const text = await response.text();
  let data: any = text;
  if (text.length > 0) {
    try {
      data = JSON.parse(text);
    } catch {
      // Proxies and a missing server extension answer with HTML; keep the
      // raw text so the error below still says something.
    }
  }

  if (!response.ok) {
    const message =
      typeof data === 'object' && data !== null && data.message
        ? String(data.message)
        : `${response.status} ${response.statusText}`.trim();
    throw new SshpykResponseError(response, message, fieldOf(data));
  }

  return data as T;
}

/**
 * A refused request, naming the model field it concerns when the server did
 * (`{message, field}`), so the form can put the message next to that field.
 */
export class SshpykResponseError extends ServerConnection.ResponseError {
  constructor(
    response: Response,
    message: string,
    readonly field: string | null = null
  ) {
    super(response, message);
  }
}

function fieldOf(data: any): string | null {
  return typeof data === 'object' && data !== null && data.field
    ? String(data.field)
    : null;
}

/**
 * Ask the server extension for its version.
 */
export async function getVersion(
  serverSettings: ServerConnection.ISettings
): Promise<IVersionInfo> {
  const data = await requestAPI<IVersionInfo>('version', serverSettings, {
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
 * One kernelspec as `GET /sshpyk/kernels` lists it (local ones included).
 */
export interface IKernelEntry {
  name: string;
  ssh: boolean;
  resource_dir?: string;
  config?: ISSHKernelConfig;
  display_name?: string | null;
  language?: string | null;
  error?: { message: string; field?: string | null };
}

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skipped';

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

export interface IRemoteKernelspecs {
  alias: string;
  remote_python_prefix: string;
  python?: string;
  kernelspecs: IRemoteKernelspec[];
}

export type TunnelState =
  'launching' | 'connected' | 'reconnecting' | 'lost' | 'dead';

/**
 * One running SSH kernel and its tunnel.
 */
export interface ITunnelStatus {
  kernel_id: string;
  kernelspec: string;
  host_alias: string;
  state: TunnelState;
  step: string | null;
  since: number;
  rtt_ms: number | null;
  remote_hostname?: string | null;
  mounts?: IMountStatus[];
}

/**
 * One SSHFS mount of a running SSH kernel.
 */
export interface IMountStatus {
  local_path: string;
  remote_path: string;
  state: 'unmounted' | 'mounting' | 'mounted' | 'remounting' | 'failed';
  since: number;
  error: string | null;
  mounts: number;
}

function json(method: string, body?: unknown): RequestInit {
  return body === undefined
    ? { method }
    : { method, body: JSON.stringify(body) };
}

/**
 * The kernel model's JSON schema, as the server validates with it.
 */
export async function getKernelSchema(
  serverSettings: ServerConnection.ISettings
): Promise<Record<string, any>> {
  const doc = await requestAPI<any>('openapi.json', serverSettings, {
    method: 'GET'
  });
  const schema = doc?.components?.schemas?.SSHKernel;
  if (typeof schema !== 'object' || schema === null) {
    throw new Error('sshpyk: the OpenAPI document has no SSHKernel schema');
  }
  return schema;
}

export async function listKernels(
  serverSettings: ServerConnection.ISettings
): Promise<IKernelEntry[]> {
  const data = await requestAPI<{ kernels: IKernelEntry[] }>(
    'kernels',
    serverSettings,
    json('GET')
  );
  return data.kernels ?? [];
}

export function addKernel(
  serverSettings: ServerConnection.ISettings,
  config: Record<string, unknown>
): Promise<IKernelEntry> {
  return requestAPI('kernels', serverSettings, json('POST', config));
}

/**
 * A partial edit; `null` puts an optional field back to its default.
 */
export function editKernel(
  serverSettings: ServerConnection.ISettings,
  name: string,
  patch: Record<string, unknown>
): Promise<IKernelEntry> {
  return requestAPI(
    `kernels/${encodeURIComponent(name)}`,
    serverSettings,
    json('PATCH', patch)
  );
}

export async function deleteKernel(
  serverSettings: ServerConnection.ISettings,
  name: string
): Promise<void> {
  await requestAPI(
    `kernels/${encodeURIComponent(name)}`,
    serverSettings,
    json('DELETE')
  );
}

/**
 * The host aliases of an ssh config: the server user's default one by GET, a
 * named one by POST (a config can run programs, so naming one is never a GET).
 */
export async function listHosts(
  serverSettings: ServerConnection.ISettings,
  sshConfig?: string | null
): Promise<IHostList> {
  return requestAPI(
    'hosts',
    serverSettings,
    sshConfig ? json('POST', { ssh_config: sshConfig }) : json('GET')
  );
}

/**
 * The kernelspecs of a remote environment: connects to the host and runs the
 * prefix's python there, hence a POST.
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
    `hosts/${encodeURIComponent(alias)}/kernelspecs`,
    serverSettings,
    json('POST', body)
  );
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

export async function listOrphans(
  serverSettings: ServerConnection.ISettings
): Promise<IOrphan[]> {
  const data = await requestAPI<{ kernels: IOrphan[] }>(
    'orphans',
    serverSettings,
    json('GET')
  );
  return data.kernels ?? [];
}

/**
 * Make an orphan one of this server's kernels again; resolves with its
 * `/api/kernels` model.
 */
export function attachOrphan(
  serverSettings: ServerConnection.ISettings,
  kernelId: string
): Promise<{ id: string; name: string }> {
  return requestAPI(
    `orphans/${encodeURIComponent(kernelId)}/attach`,
    serverSettings,
    json('POST', {})
  );
}

export async function shutDownOrphan(
  serverSettings: ServerConnection.ISettings,
  kernelId: string
): Promise<void> {
  await requestAPI(
    `orphans/${encodeURIComponent(kernelId)}`,
    serverSettings,
    json('DELETE')
  );
}

export async function getTunnelStatus(
  serverSettings: ServerConnection.ISettings
): Promise<ITunnelStatus[]> {
  const data = await requestAPI<{ kernels: ITunnelStatus[] }>(
    'status',
    serverSettings,
    json('GET')
  );
  return data.kernels ?? [];
}

/**
 * Run every health check of an SSH kernel, calling `onCheck` as each one
 * finishes (the server streams NDJSON), and resolve with the overall verdict.
 */
export async function checkKernel(
  serverSettings: ServerConnection.ISettings,
  name: string,
  onCheck: (check: ICheck) => void
): Promise<boolean> {
  const url = URLExt.join(
    serverSettings.baseUrl,
    API_NAMESPACE,
    `kernels/${encodeURIComponent(name)}/check?stream=1`
  );
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(
      url,
      { method: 'POST' },
      serverSettings
    );
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  if (!response.ok) {
    const text = await response.text();
    let data: any = null;
    try {
      data = JSON.parse(text);
    } catch {
      // not JSON: the status line below says enough
    }
    throw new SshpykResponseError(
      response,
      data?.message ?? `${response.status} ${response.statusText}`.trim(),
      fieldOf(data)
    );
  }
  let ok: boolean | null = null;
  const onLine = (line: string) => {
    if (!line.trim()) {
      return;
    }
    const msg = JSON.parse(line);
    if (msg.check) {
      onCheck(msg.check as ICheck);
    } else if (msg.done) {
      ok = Boolean(msg.ok);
    }
  };
  await readLines(response, onLine);
  if (ok === null) {
    throw new Error(`The check of ${name} ended before its summary line.`);
  }
  return ok;
}

async function readLines(
  response: Response,
  onLine: (line: string) => void
): Promise<void> {
  const reader = response.body?.getReader();
  if (!reader) {
    (await response.text()).split('\n').forEach(onLine);
    return;
  }
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) {
      break;
    }
    buffer += decoder.decode(value, { stream: true });
    const lines = buffer.split('\n');
    buffer = lines.pop() ?? '';
    lines.forEach(onLine);
  }
  onLine(buffer + decoder.decode());
}
