/**
 * The login watcher: polls the server's logins and turns what it sees into
 * UI. A login waiting for an answer opens the login dialog, once per prompt;
 * a prompt that goes away while its dialog is open (answered in a terminal,
 * timed out, another tab answered it) closes that dialog; a login that ends
 * says so once in a notification.
 *
 * Polling is quick (1 s) while a login is under way, slow (5 s) otherwise,
 * stops while the page is hidden, backs off while the server fails (silently:
 * a server that is down is said once, in `error`), and never has two requests
 * out at a time.
 */
import { Dialog, Notification } from '@jupyterlab/apputils';
import { ServerConnection } from '@jupyterlab/services';
import { nullTranslator, TranslationBundle } from '@jupyterlab/translation';
import { IPoll, Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { describeError } from '../errors';
import {
  answerLogin,
  cancelLogin,
  ILogin,
  ILoginPrompt,
  listLogins,
  startLogin
} from './api';
import { createLoginDialog } from './dialog';
import { ISshpykLogins } from './tokens';

/**
 * A dialog on screen (or waiting its turn behind another dialog) for one
 * prompt.
 */
interface IOpenPrompt {
  loginId: string;
  promptId: string;
  dialog: Dialog<string>;
  /**
   * Closed because the prompt went away: nothing is sent for it.
   */
  vanished: boolean;
}

const BACKOFF_MAX = 60 * 1000;

export class LoginWatcher implements ISshpykLogins {
  constructor(options: LoginWatcher.IOptions) {
    this.serverSettings = options.serverSettings;
    this._trans = options.trans ?? nullTranslator.load('sshpyk');
    this._activeInterval = options.activeInterval ?? 1000;
    this._idleInterval = options.idleInterval ?? 5000;
    this._poll = new Poll({
      auto: options.poll ?? true,
      factory: () => this._pollLogins(),
      frequency: this._frequency(false),
      standby: 'when-hidden',
      name: 'sshpyk:logins'
    });
  }

  readonly serverSettings: ServerConnection.ISettings;

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  get logins(): readonly ILogin[] {
    return this._logins;
  }

  get error(): string | null {
    return this._error;
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /**
   * The poll's current interval in ms (the quick one while a login is under
   * way); the back-off after a failure comes on top.
   */
  get interval(): number {
    return this._poll.frequency.interval;
  }

  loginFor(alias: string, sshConfig?: string | null): ILogin | null {
    for (let i = this._logins.length - 1; i >= 0; i--) {
      const login = this._logins[i];
      if (
        login.alias === alias &&
        (sshConfig === undefined || login.ssh_config === sshConfig)
      ) {
        return login;
      }
    }
    return null;
  }

  async start(alias: string, sshConfig: string | null = null): Promise<ILogin> {
    const login = await startLogin(this.serverSettings, alias, sshConfig);
    // how it ends is news even when the first poll to see it sees it ended
    this._started.add(login.id);
    void this.refresh();
    return login;
  }

  async refresh(): Promise<void> {
    await this._poll.refresh();
    // the poll's next tick is its answer (resolved or rejected); disposal
    // rejects it, which is no failure of this call
    await this._poll.tick.catch(() => undefined);
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._poll.dispose();
    // the page goes: the logins stay, for a terminal or another tab
    this._open.forEach(open => this._close(open));
    Signal.clearData(this);
  }

  private _frequency(active: boolean): IPoll.Frequency {
    return {
      interval: active ? this._activeInterval : this._idleInterval,
      backoff: true,
      max: BACKOFF_MAX
    };
  }

  private async _pollLogins(): Promise<void> {
    // One request at a time: a refresh while one is out waits for it (the
    // poll itself would start a second one, and drop the first's answer).
    while (this._inFlight) {
      await this._inFlight.catch(() => undefined);
    }
    const request = listLogins(this.serverSettings);
    this._inFlight = request;
    let logins: ILogin[];
    try {
      logins = await request;
    } catch (error) {
      this._failed(error);
      throw error; // lets the poll back off
    } finally {
      if (this._inFlight === request) {
        this._inFlight = null;
      }
    }
    if (!this._isDisposed) {
      this._update(logins);
    }
  }

  private _failed(error: unknown): void {
    const message = describeError(error);
    if (this._error === null) {
      // once per outage, not once per poll
      console.warn(`sshpyk: cannot list the logins: ${message}`);
    }
    if (message !== this._error) {
      this._error = message;
      this._changed.emit();
    }
  }

  private _update(logins: ILogin[]): void {
    const first = !this._polled;
    this._polled = true;
    this._closeVanished(logins);
    for (const login of logins) {
      if (login.state === 'prompting' && login.prompt) {
        this._showPrompt(login, login.prompt);
      } else if (login.state === 'connected' || login.state === 'failed') {
        // what had ended before this page loaded is no news
        const known = first && !this._started.has(login.id);
        this._announce(login, known);
      }
    }
    const active = logins.some(
      l => l.state === 'connecting' || l.state === 'prompting'
    );
    this._poll.frequency = this._frequency(active);
    const changed =
      this._error !== null ||
      JSON.stringify(logins) !== JSON.stringify(this._logins);
    this._logins = logins;
    this._error = null;
    if (changed) {
      this._changed.emit();
    }
  }

  /**
   * Close the dialogs whose prompt is no longer the one waiting.
   */
  private _closeVanished(logins: ILogin[]): void {
    for (const open of this._open) {
      const login = logins.find(l => l.id === open.loginId);
      if (login?.state !== 'prompting' || login.prompt?.id !== open.promptId) {
        this._close(open);
      }
    }
  }

  /**
   * Close a dialog without sending anything for it.
   */
  private _close(open: IOpenPrompt): void {
    open.vanished = true;
    this._open.delete(open);
    // reject, not dispose: a dialog still waiting behind another one would
    // leave its promise rejected with nothing to catch it
    open.dialog.reject();
    open.dialog.dispose();
  }

  private _showPrompt(login: ILogin, prompt: ILoginPrompt): void {
    const key = `${login.id}\n${prompt.id}`;
    if (this._shown.has(key)) {
      return;
    }
    this._shown.add(key);
    const dialog = createLoginDialog(login, prompt, {
      // the same question right after an answer: the answer was refused
      retry: this._answered.get(login.id) === prompt.text,
      trans: this._trans
    });
    const open: IOpenPrompt = {
      loginId: login.id,
      promptId: prompt.id,
      dialog,
      vanished: false
    };
    this._open.add(open);
    dialog
      .launch()
      .then(
        result => {
          if (open.vanished || this._isDisposed) {
            return;
          }
          return result.button.accept
            ? this._answer(login, prompt, result.value ?? '')
            : this._cancel(login);
        },
        () => undefined
      )
      .finally(() => this._open.delete(open));
  }

  private async _answer(
    login: ILogin,
    prompt: ILoginPrompt,
    answer: string
  ): Promise<void> {
    this._answered.set(login.id, prompt.text);
    try {
      await answerLogin(this.serverSettings, login.id, prompt.id, answer);
    } catch (error) {
      Notification.error(
        this._trans.__(
          'The answer to %1 was not taken: %2',
          login.alias,
          describeError(error)
        ),
        { autoClose: false }
      );
    }
    await this.refresh();
  }

  private async _cancel(login: ILogin): Promise<void> {
    // the user gave it up: its failure is no news to them
    this._cancelled.add(login.id);
    try {
      await cancelLogin(this.serverSettings, login.id);
    } catch (error) {
      Notification.error(
        this._trans.__(
          'The login to %1 could not be cancelled: %2',
          login.alias,
          describeError(error)
        ),
        { autoClose: false }
      );
    }
    await this.refresh();
  }

  /**
   * Say once that a login ended (`known`: note it without a word).
   */
  private _announce(login: ILogin, known: boolean): void {
    const key = `${login.id}\n${login.state}`;
    if (this._announced.has(key)) {
      return;
    }
    this._announced.add(key);
    if (known) {
      return;
    }
    if (login.state === 'connected') {
      Notification.success(this._trans.__('Logged in to %1.', login.alias), {
        autoClose: 5000
      });
    } else if (!this._cancelled.has(login.id)) {
      Notification.error(
        this._trans.__(
          'Login to %1 failed: %2',
          login.alias,
          login.error ?? this._trans.__('no reason given')
        ),
        { autoClose: false }
      );
    }
  }

  private readonly _trans: TranslationBundle;
  private readonly _activeInterval: number;
  private readonly _idleInterval: number;
  private readonly _poll: Poll;
  private _isDisposed = false;
  private _inFlight: Promise<ILogin[]> | null = null;
  private _polled = false;
  private _logins: ILogin[] = [];
  private _error: string | null = null;
  private _changed = new Signal<this, void>(this);
  private _open = new Set<IOpenPrompt>();
  // what was handled already, so that each happens once
  private _shown = new Set<string>();
  private _announced = new Set<string>();
  private _started = new Set<string>();
  private _cancelled = new Set<string>();
  private _answered = new Map<string, string>();
}

export namespace LoginWatcher {
  export interface IOptions {
    /**
     * Usually `app.serviceManager.serverSettings`.
     */
    serverSettings: ServerConnection.ISettings;
    trans?: TranslationBundle;
    /**
     * Poll at once (true); when false, the first `refresh` starts polling.
     */
    poll?: boolean;
    /**
     * The poll interval in ms while a login is under way (1000), and
     * otherwise (5000).
     */
    activeInterval?: number;
    idleInterval?: number;
  }
}
