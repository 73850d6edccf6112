import { ServerConnection } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';

import {
  addKernel,
  deleteKernel,
  editKernel,
  getKernelSchema,
  IKernelEntry,
  listKernels
} from './api';
import { CheckRun } from './checks';
import { describeError } from './errors';
import { FormData } from './formdata';

/**
 * What the sidebar shows: the SSH kernels, their last checks, which one is
 * selected, and what the form is doing.
 */
export class KernelsModel {
  /**
   * @param refreshSpecs tells Lab the kernelspecs changed, so the launcher
   *   shows the change at once instead of on its next poll.
   */
  constructor(
    readonly serverSettings: ServerConnection.ISettings,
    private readonly _refreshSpecs: () => Promise<void> = async () => {}
  ) {}

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /**
   * The SSH kernels; `null` until the first load.
   */
  get kernels(): readonly IKernelEntry[] | null {
    return this._kernels;
  }

  get error(): string | null {
    return this._error;
  }

  get selected(): string | null {
    return this._selected;
  }

  set selected(name: string | null) {
    if (name !== this._selected) {
      this._selected = name;
      this._changed.emit();
    }
  }

  checkRun(name: string): CheckRun | null {
    return this._checks.get(name) ?? null;
  }

  /**
   * The kernel model's JSON schema, fetched once from the server.
   */
  schema(): Promise<Record<string, any>> {
    if (!this._schema) {
      this._schema = getKernelSchema(this.serverSettings);
      // a failed fetch must not stick: the next open of the form retries
      this._schema.catch(() => (this._schema = null));
    }
    return this._schema;
  }

  async refresh(): Promise<void> {
    try {
      const entries = await listKernels(this.serverSettings);
      this._kernels = entries.filter(e => e.ssh);
      this._error = null;
    } catch (error) {
      this._error = describeError(error);
    }
    this._changed.emit();
  }

  async add(data: FormData): Promise<IKernelEntry> {
    const entry = await addKernel(this.serverSettings, data);
    this._selected = entry.name;
    await this._afterChange();
    return entry;
  }

  async edit(name: string, patch: FormData): Promise<IKernelEntry> {
    const entry = await editKernel(this.serverSettings, name, patch);
    // the last check was for the old settings
    this._checks.delete(name);
    await this._afterChange();
    return entry;
  }

  async remove(name: string): Promise<void> {
    await deleteKernel(this.serverSettings, name);
    this._checks.delete(name);
    if (this._selected === name) {
      this._selected = null;
    }
    await this._afterChange();
  }

  /**
   * Start the health checks of a kernel; the run reports its own progress.
   */
  check(name: string): CheckRun {
    const run = new CheckRun(name);
    this._checks.set(name, run);
    run.changed.connect(() => this._changed.emit());
    void run.run(this.serverSettings);
    return run;
  }

  dispose(): void {
    Signal.clearData(this);
  }

  private async _afterChange(): Promise<void> {
    await Promise.all([
      this.refresh(),
      this._refreshSpecs().catch(error =>
        console.warn('sshpyk: could not refresh the kernelspecs', error)
      )
    ]);
  }

  private _kernels: IKernelEntry[] | null = null;
  private _error: string | null = null;
  private _selected: string | null = null;
  private _schema: Promise<Record<string, any>> | null = null;
  private _checks = new Map<string, CheckRun>();
  private _changed = new Signal<this, void>(this);
}
