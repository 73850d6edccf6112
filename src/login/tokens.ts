/**
 * The token of the login watcher, for the views that show or start logins
 * (the sidebar's and the status bar's "login needed", another extension's
 * button): `logins` is the server's list as last polled, `changed` says when
 * it changed, `start` starts a login (its prompts then open the login dialog
 * by themselves).
 */
import { Token } from '@lumino/coreutils';
import { ISignal } from '@lumino/signaling';

import type { ILogin } from './api';

export interface ISshpykLogins {
  /**
   * The current and recent logins, newest last, as last polled.
   */
  readonly logins: readonly ILogin[];
  /**
   * Why the last poll failed (words a user can act on), or null.
   */
  readonly error: string | null;
  /**
   * Emitted when `logins` or `error` changed.
   */
  readonly changed: ISignal<ISshpykLogins, void>;
  /**
   * The newest login to a host, or null.
   *
   * @param sshConfig the ssh config naming the host (undefined: any)
   */
  loginFor(alias: string, sshConfig?: string | null): ILogin | null;
  /**
   * Start a login to a host (or get the one in progress for it), and poll at
   * once so its first prompt shows without waiting.
   *
   * @throws as `requestAPI` does
   */
  start(alias: string, sshConfig?: string | null): Promise<ILogin>;
  /**
   * Poll now; resolves once the answer (or the failure) is in.
   */
  refresh(): Promise<void>;
}

export const ISshpykLogins = new Token<ISshpykLogins>(
  'sshpyk:logins',
  'Interactive logins to SSH hosts (password, one-time code, host key): the list, and a way to start one.'
);
