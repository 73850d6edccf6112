/**
 * The one request function of the sshpyk client and the two ways to read its
 * reply: whole as JSON (`requestAPI`) or line by line as NDJSON
 * (`requestLines`). Every typed call of `api.ts` goes through here.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/**
 * The REST namespace of the sshpyk server extension (`<base_url>/sshpyk/...`).
 */
export const API_NAMESPACE = 'sshpyk';

/**
 * A refused request, naming the model field it concerns when the server did
 * (`{message, field}`), so the form can put the message next to that field;
 * `errors` holds every invalid field when the server lists them
 * (`errors: [{field, message}]`).
 */
export class SshpykResponseError extends ServerConnection.ResponseError {
  constructor(
    response: Response,
    message: string,
    readonly field: string | null = null,
    readonly errors: { field: string; message: string }[] = []
  ) {
    super(response, message);
  }
}

/**
 * The `errors` list of a refusal's body, keeping only well-formed entries.
 */
function fieldErrors(data: any): { field: string; message: string }[] {
  if (!Array.isArray(data?.errors)) {
    return [];
  }
  return data.errors
    .filter(
      (e: any) =>
        e && typeof e.field === 'string' && typeof e.message === 'string'
    )
    .map((e: any) => ({ field: e.field, message: e.message }));
}

/**
 * The body as JSON when it is JSON, else the raw text: proxies and a missing
 * server extension answer with HTML, and the text still says something.
 */
function parseBody(text: string): any {
  if (text.length === 0) {
    return text;
  }
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * The one request function: every call of this client goes through it.
 *
 * Going through `ServerConnection.makeRequest` with the application's server
 * settings (rather than `fetch` or `makeSettings()`) is what adds the base URL,
 * token and XSRF header the server expects. The body of a successful reply is
 * left unread, for the caller to read whole or line by line.
 *
 * @throws {ServerConnection.NetworkError} when the server cannot be reached
 * @throws {SshpykResponseError} on a non-2xx reply, carrying the server's
 *   `message` (and `field`) when the body is JSON, else the HTTP status
 */
async function send(
  endPoint: string,
  serverSettings: ServerConnection.ISettings,
  init: RequestInit
): Promise<Response> {
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
  if (!response.ok) {
    const data = parseBody(await response.text());
    const isObject = typeof data === 'object' && data !== null;
    const message =
      isObject && data.message
        ? String(data.message)
        : `${response.status} ${response.statusText}`.trim();
    const field = isObject && data.field ? String(data.field) : null;
    throw new SshpykResponseError(
      response,
      message,
      field,
      isObject ? fieldErrors(data) : []
    );
  }
  return response;
}

/**
 * Call the sshpyk server extension and return the JSON body (the raw text
 * when the body is not JSON).
 *
 * @param endPoint path below `<base_url>/sshpyk/` (see `route`)
 * @param serverSettings usually `app.serviceManager.serverSettings`
 * @param init request options (method, body, ...)
 * @throws {ServerConnection.NetworkError} when the server cannot be reached
 * @throws {SshpykResponseError} (a `ServerConnection.ResponseError`) on a
 *   non-2xx reply, carrying the server's `message` when the body is JSON
 */
export async function requestAPI<T>(
  endPoint: string,
  serverSettings: ServerConnection.ISettings,
  init: RequestInit = {}
): Promise<T> {
  const response = await send(endPoint, serverSettings, init);
  return parseBody(await response.text()) as T;
}

/**
 * Call an end point that streams NDJSON, handing each message to `onMessage`
 * as soon as its line is complete (lines split across chunks included).
 *
 * @throws as `requestAPI` does, and a `SyntaxError` on a line that is not JSON
 */
export async function requestLines(
  endPoint: string,
  serverSettings: ServerConnection.ISettings,
  init: RequestInit,
  onMessage: (message: any) => void
): Promise<void> {
  const response = await send(endPoint, serverSettings, init);
  const onLine = (line: string) => {
    if (line.trim()) {
      onMessage(JSON.parse(line));
    }
  };
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
