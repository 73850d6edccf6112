import { ISessionContext, ReactWidget } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { UseSignal } from '@jupyterlab/ui-components';
import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';
import * as React from 'react';

import { ITunnelStatus } from './api';
import { sshpykIcon } from './icons';
import { isCancellable, jobDetail, kernelLabel } from './slurm/words';
import { TunnelState } from './states';
import { tunnelLabel } from './status';
import { ISshpykModel } from './tokens';

/**
 * How often the words of a running Slurm job (its time left) are redone.
 */
const TICK = 30 * 1000;

/**
 * What the status item says about the current kernel.
 */
export interface ITunnelInfo {
  /**
   * null while a kernel starts that the server does not list yet.
   */
  kernelId: string | null;
  kernelspec: string;
  hostAlias: string;
  sshConfig: string | null;
  state: TunnelState;
  label: string;
  /**
   * A Slurm kernel's job in a sentence (job id, node, time left), else null.
   */
  job: string | null;
  /**
   * A Slurm kernel queued or starting: its launch can be cancelled.
   */
  cancellable: boolean;
}

/**
 * Any main-area widget with a kernel session: notebooks, consoles and what
 * other extensions add, without depending on each of their packages.
 */
function sessionContextOf(widget: Widget | null): ISessionContext | null {
  const ctx = (widget as any)?.sessionContext;
  return ctx && typeof ctx === 'object' && 'kernelChanged' in ctx ? ctx : null;
}

/**
 * Follows the current widget's kernel and says whether it is an SSH kernel
 * and how its tunnel is.
 */
export class CurrentTunnel {
  constructor(
    private readonly _model: ISshpykModel,
    private readonly _trans: TranslationBundle
  ) {
    _model.kernelspecsChanged.connect(this.refresh, this);
    _model.tunnelsChanged.connect(this.refresh, this);
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get info(): ITunnelInfo | null {
    return this._info;
  }

  /**
   * The user's "show the status item" setting: when off, there is no info.
   */
  get enabled(): boolean {
    return this._enabled;
  }

  set enabled(value: boolean) {
    this._enabled = value;
    this.refresh();
  }

  /**
   * Follow another widget (the shell's current one).
   */
  follow(widget: Widget | null): void {
    const ctx = sessionContextOf(widget);
    if (ctx === this._context) {
      return;
    }
    if (this._context) {
      this._context.kernelChanged.disconnect(this.refresh, this);
      this._context.statusChanged.disconnect(this.refresh, this);
    }
    this._context = ctx;
    if (ctx) {
      ctx.kernelChanged.connect(this.refresh, this);
      ctx.statusChanged.connect(this.refresh, this);
    }
    this.refresh();
  }

  refresh(): void {
    const info = this._compute();
    if (JSON.stringify(info) !== JSON.stringify(this._info)) {
      this._info = info;
      this._changed.emit();
    }
    // a Slurm job's time left goes down between polls that bring no news
    const ticking = info?.job !== null && info?.job !== undefined;
    if (ticking && this._ticker === null) {
      this._ticker = setInterval(() => this.refresh(), TICK);
    } else if (!ticking && this._ticker !== null) {
      clearInterval(this._ticker);
      this._ticker = null;
    }
  }

  dispose(): void {
    this.follow(null);
    if (this._ticker !== null) {
      clearInterval(this._ticker);
      this._ticker = null;
    }
    Signal.clearData(this);
  }

  private _compute(): ITunnelInfo | null {
    const ctx = this._context;
    if (!ctx || !this._enabled) {
      return null;
    }
    const kernel = ctx.session?.kernel;
    let name: string | null = kernel?.name ?? null;
    let tunnel: ITunnelStatus | null = null;
    if (kernel) {
      tunnel = this._model.tunnelByKernelId(kernel.id);
    } else {
      // A kernel being started: Lab learns its id only once it runs, which
      // for a Slurm kernel is after the queue. The server lists it launching
      // meanwhile; it is this widget's when it is the one launch of the
      // kernelspec this widget waits for.
      name = this._startingKernelspec(ctx);
      const launching = name
        ? this._model
            .tunnelsOfKernelspec(name)
            .filter(t => t.state === 'launching')
        : [];
      tunnel = launching.length === 1 ? launching[0] : null;
    }
    if (!name) {
      return null;
    }
    const entry = this._model.kernelspecs?.find(
      k => k.name === name && k.config
    );
    const hostAlias = tunnel?.host_alias ?? entry?.config?.ssh_host_alias;
    if (!hostAlias) {
      return null; // a local kernel
    }
    // The server lists a kernel once it has started; until then it launches.
    const state: TunnelState = tunnel?.state ?? 'launching';
    return {
      kernelId: tunnel?.kernel_id ?? kernel?.id ?? null,
      kernelspec: name,
      hostAlias,
      sshConfig: tunnel?.ssh_config ?? entry?.config?.ssh_config ?? null,
      state,
      label: tunnel
        ? kernelLabel(tunnel, this._trans)
        : tunnelLabel(state, null, this._trans),
      job: tunnel ? jobDetail(tunnel, this._trans) : null,
      cancellable: isCancellable(tunnel)
    };
  }

  /**
   * The SSH kernelspec a widget with no kernel yet is starting (Lab names it
   * by its display name), or null.
   */
  private _startingKernelspec(ctx: ISessionContext): string | null {
    if (ctx.kernelDisplayStatus !== 'initializing') {
      return null;
    }
    const entries = this._model.kernelspecs ?? [];
    const wanted = [ctx.kernelDisplayName, ctx.kernelPreference?.name];
    for (const want of wanted) {
      const found = entries.filter(
        e =>
          e.config &&
          want &&
          (e.name === want ||
            (e.display_name ?? e.config.display_name) === want)
      );
      if (found.length === 1) {
        return found[0].name;
      }
    }
    return null;
  }

  private _ticker: ReturnType<typeof setInterval> | null = null;
  private _enabled = true;
  private _context: ISessionContext | null = null;
  private _info: ITunnelInfo | null = null;
  private _changed = new Signal<this, void>(this);
}

/**
 * The status bar item: host alias and tunnel state of the current kernel.
 */
export class TunnelStatusItem extends ReactWidget {
  constructor(
    private readonly _current: CurrentTunnel,
    private readonly _open: (kernelspec: string) => void,
    private readonly _trans: TranslationBundle,
    private readonly _login?: (alias: string, sshConfig: string | null) => void,
    private readonly _cancel?: (kernelId: string) => void
  ) {
    super();
    this.addClass('jp-sshpyk-StatusItem');
  }

  private _title(info: ITunnelInfo, login: boolean, cancel: boolean): string {
    const trans = this._trans;
    const what = info.job
      ? trans.__(
          'SSH kernel on %1: %2. %3.',
          info.hostAlias,
          info.label,
          info.job
        )
      : trans.__('SSH kernel on %1: %2.', info.hostAlias, info.label);
    const click = login
      ? trans.__('Click to log in again; the kernel reconnects.')
      : cancel
        ? trans.__('Click to cancel its Slurm job.')
        : trans.__('Click to show it in the SSH Kernels panel.');
    return `${what} ${click}`;
  }

  protected render(): JSX.Element {
    return (
      <UseSignal signal={this._current.changed}>
        {() => {
          const info = this._current.info;
          if (!info) {
            return null;
          }
          // "login needed": one click (or Enter) logs in again; otherwise the panel
          const login = info.state === 'login_needed' && this._login;
          // a queued (or starting) Slurm kernel: a click offers to cancel it
          const cancel = info.cancellable && info.kernelId && this._cancel;
          const kernelId = info.kernelId ?? '';
          const open = login
            ? () => login(info.hostAlias, info.sshConfig)
            : cancel
              ? () => cancel(kernelId)
              : () => this._open(info.kernelspec);
          return (
            <div
              role="button"
              tabIndex={0}
              className={`jp-sshpyk-StatusItem-body jp-sshpyk-Tunnel-${info.state}`}
              data-testid="sshpyk-status-item"
              data-state={info.state}
              data-cancellable={cancel ? 'true' : undefined}
              title={this._title(info, !!login, !!cancel)}
              onClick={open}
              onKeyDown={event => {
                if (event.key === 'Enter' || event.key === ' ') {
                  event.preventDefault();
                  open();
                }
              }}
            >
              <sshpykIcon.react
                tag="span"
                className="jp-sshpyk-StatusItem-icon"
              />
              <span className="jp-StatusBar-TextItem">
                {`${info.hostAlias}: ${info.label}`}
              </span>
            </div>
          );
        }}
      </UseSignal>
    );
  }
}
