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
    throw new ServerConnection.ResponseError(response, message);
  }

  return data as T;
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
