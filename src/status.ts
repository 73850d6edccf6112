import { ServerConnection } from '@jupyterlab/services';
import { nullTranslator, TranslationBundle } from '@jupyterlab/translation';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { getTunnelStatus, ITunnelStatus, TunnelState } from './api';
import { describeError } from './errors';

/**
 * Follows `GET /sshpyk/status`: the running SSH kernels and their tunnels.
 * Shared by the sidebar and the status bar so there is one poll, not two.
 */
export class TunnelStatusModel {
  constructor(
    private readonly _serverSettings: ServerConnection.ISettings,
    interval = 2000
  ) {
    this._poll = new Poll({
      auto: true,
      factory: () => this._refresh(),
      // Back off while the server fails, and stop while the tab is hidden:
      // every request pings each tunnel.
      frequency: { interval, backoff: true, max: 60 * 1000 },
      standby: 'when-hidden',
      name: 'sshpyk:tunnel-status'
    });
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get kernels(): readonly ITunnelStatus[] {
    return this._kernels;
  }

  /**
   * The last failure, so the UI can say why states are stale.
   */
  get error(): string | null {
    return this._error;
  }

  byKernelId(id: string | null | undefined): ITunnelStatus | null {
    return this._kernels.find(k => k.kernel_id === id) ?? null;
  }

  byKernelspec(name: string): ITunnelStatus[] {
    return this._kernels.filter(k => k.kernelspec === name);
  }

  /**
   * Poll now, e.g. right after a kernel was started.
   */
  refresh(): Promise<void> {
    return this._poll.refresh();
  }

  dispose(): void {
    this._poll.dispose();
    Signal.clearData(this);
  }

  private async _refresh(): Promise<void> {
    try {
      const kernels = await getTunnelStatus(this._serverSettings);
      const changed =
        JSON.stringify(kernels) !== JSON.stringify(this._kernels) ||
        this._error !== null;
      this._kernels = kernels;
      this._error = null;
      if (changed) {
        this._changed.emit();
      }
    } catch (error) {
      this._error = describeError(error);
      this._changed.emit();
      throw error; // lets the poll back off
    }
  }

  private _poll: Poll;
  private _kernels: ITunnelStatus[] = [];
  private _error: string | null = null;
  private _changed = new Signal<this, void>(this);
}

/**
 * The words for a tunnel state, with the launch step while launching.
 */
export function tunnelLabel(
  state: TunnelState,
  step?: string | null,
  trans: TranslationBundle = nullTranslator.load('sshpyk')
): string {
  if (state === 'launching' && step) {
    return trans.__('launching: %1', step);
  }
  switch (state) {
    case 'launching':
      return trans.__('launching');
    case 'connected':
      return trans.__('connected');
    case 'reconnecting':
      return trans.__('reconnecting');
    case 'lost':
      return trans.__('lost');
    case 'dead':
      return trans.__('dead');
  }
  return state;
}
