import { ServerConnection } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';

import { checkKernelspec, ICheck } from './api';
import { describeError } from './errors';

export type CheckRunState = 'running' | 'ok' | 'warning' | 'failed' | 'error';

/**
 * One run of a kernel's health checks, filled in as the server streams them.
 */
export class CheckRun {
  constructor(readonly kernelName: string) {}

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get checks(): readonly ICheck[] {
    return this._checks;
  }

  get state(): CheckRunState {
    return this._state;
  }

  /**
   * Why the run itself failed (not a failed check): the server's message.
   */
  get error(): string | null {
    return this._error;
  }

  get finishedAt(): Date | null {
    return this._finishedAt;
  }

  async run(serverSettings: ServerConnection.ISettings): Promise<void> {
    this._checks = [];
    this._state = 'running';
    this._error = null;
    this._changed.emit();
    try {
      await checkKernelspec(serverSettings, this.kernelName, check => {
        this._checks = [...this._checks, check];
        this._changed.emit();
      });
      this._state = summarize(this._checks);
    } catch (error) {
      this._error = describeError(error);
      this._state = 'error';
    }
    this._finishedAt = new Date();
    this._changed.emit();
  }

  private _checks: ICheck[] = [];
  private _state: CheckRunState = 'running';
  private _error: string | null = null;
  private _finishedAt: Date | null = null;
  private _changed = new Signal<this, void>(this);
}

/**
 * The verdict of a finished run: any failure wins, then any warning.
 */
export function summarize(checks: readonly ICheck[]): CheckRunState {
  if (checks.some(c => c.status === 'fail')) {
    return 'failed';
  }
  if (checks.some(c => c.status === 'warn')) {
    return 'warning';
  }
  return 'ok';
}
