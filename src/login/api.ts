/**
 * The typed calls of the login routes (`<base_url>/sshpyk/logins...`): an
 * interactive login to a host (password, one-time code, host key) that ssh
 * asks for through its askpass program, bridged to the front end by the
 * server. Every call goes through `requestAPI` (base URL, token, XSRF), and a
 * jest test (`openapi.spec.ts`) holds these routes against the OpenAPI
 * document as it does those of `api.ts`.
 */
import { ServerConnection } from '@jupyterlab/services';

import { requestAPI } from '../request';
import { LoginState } from '../states';

/**
 * The login routes below `<base_url>/sshpyk/`, spelled as the OpenAPI
 * document's `paths` spell them (`{id}` is a login's id).
 */
export const LOGIN_ROUTES = {
  logins: 'logins',
  loginAnswer: 'logins/{id}/answer',
  loginCancel: 'logins/{id}/cancel'
} as const;

/**
 * What ssh asks, as it asked it: `text` is ssh's prompt verbatim (a password
 * prompt, a one-time code prompt, a menu, the host-key question with its
 * fingerprint); `echo` says whether the answer may be shown as typed.
 */
export interface ILoginPrompt {
  id: string;
  text: string;
  echo: boolean;
}

/**
 * One login to a host, current or recent.
 */
export interface ILogin {
  id: string;
  alias: string;
  ssh_config: string | null;
  state: LoginState;
  /**
   * The question waiting for an answer (only while `prompting`).
   */
  prompt: ILoginPrompt | null;
  /**
   * Why it ended without a login (only when `failed`).
   */
  error: string | null;
}

function loginRoute(
  template: (typeof LOGIN_ROUTES)['loginAnswer' | 'loginCancel'],
  id: string
): string {
  return template.replace('{id}', encodeURIComponent(id));
}

/**
 * The current and recent logins, newest last.
 *
 * @throws as `requestAPI` does
 */
export async function listLogins(
  serverSettings: ServerConnection.ISettings
): Promise<ILogin[]> {
  const data = await requestAPI<{ logins?: ILogin[] }>(
    LOGIN_ROUTES.logins,
    serverSettings,
    { method: 'GET' }
  );
  return data.logins ?? [];
}

/**
 * Start a login to a host, or get the one already in progress for it.
 *
 * @param sshConfig the ssh config that names the host (null: the default one)
 * @throws as `requestAPI` does (400 for a host or ssh config that cannot be
 *   used)
 */
export function startLogin(
  serverSettings: ServerConnection.ISettings,
  alias: string,
  sshConfig: string | null = null
): Promise<ILogin> {
  return requestAPI(LOGIN_ROUTES.logins, serverSettings, {
    method: 'POST',
    body: JSON.stringify({ alias, ssh_config: sshConfig })
  });
}

/**
 * Answer a login's prompt (the answer goes to ssh only).
 *
 * @throws as `requestAPI` does (when the prompt is no longer the one waiting)
 */
export async function answerLogin(
  serverSettings: ServerConnection.ISettings,
  id: string,
  promptId: string,
  answer: string
): Promise<void> {
  await requestAPI(loginRoute(LOGIN_ROUTES.loginAnswer, id), serverSettings, {
    method: 'POST',
    body: JSON.stringify({ prompt_id: promptId, answer })
  });
}

/**
 * Give a login up (it ends `failed`).
 *
 * @throws as `requestAPI` does
 */
export async function cancelLogin(
  serverSettings: ServerConnection.ISettings,
  id: string
): Promise<void> {
  await requestAPI(loginRoute(LOGIN_ROUTES.loginCancel, id), serverSettings, {
    method: 'POST'
  });
}
