/**
 * The one model of the sshpyk frontend: everything the sidebar and the status
 * item show, fetched here and announced by signals. Components only render it
 * and call its methods. Other extensions reach it through the
 * `ISshpykModel` token (`tokens.ts`).
 */
import { ServerConnection } from '@jupyterlab/services';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import {
  addKernelspec,
  attachOrphan,
  deleteKernelspec,
  discoverKernelspecs,
  editKernelspec,
  getKernelSchema,
  getTunnelStatus,
  IHostList,
  IKernelspecEntry,
  IOrphan,
  IRemoteKernelspecs,
  ITunnelStatus,
  listHosts,
  listKernelspecs,
  listOrphans,
  shutDownOrphan
} from './api';
import { CheckRun } from './checks';
import { cancelLaunch } from './slurm/api';
import { discoverEnvironments, IEnvironments } from './environments';
import { describeError } from './errors';
import { KernelFormData } from './formdata';
import { IOrphanOutcome, ISshpykModel } from './tokens';
import { fetchServerStatus, ServerStatus } from './version';

/**
 * The model behind `ISshpykModel`; see there for what each member means.
 */
export class SshpykModel implements ISshpykModel {
  constructor(options: SshpykModel.IOptions) {
    this.serverSettings = options.serverSettings;
    this._refreshSpecs = options.refreshSpecs ?? (async () => {});
    this._frontendVersion = options.frontendVersion;
    this._poll = new Poll({
      auto: options.poll ?? true,
      factory: () => this._pollTunnels(),
      // Back off while the server fails, and stop while the tab is hidden:
      // every request pings each tunnel.
      frequency: {
        interval: options.pollInterval ?? 2000,
        backoff: true,
        max: 60 * 1000
      },
      standby: 'when-hidden',
      name: 'sshpyk:tunnel-status'
    });
  }

  readonly serverSettings: ServerConnection.ISettings;

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  // ---- kernelspecs, selection, check runs ---------------------------------

  get kernelspecsChanged(): ISignal<this, void> {
    return this._kernelspecsChanged;
  }

  get kernelspecs(): readonly IKernelspecEntry[] | null {
    return this._kernelspecs;
  }

  get kernelspecsError(): string | null {
    return this._kernelspecsError;
  }

  get selected(): string | null {
    return this._selected;
  }

  set selected(name: string | null) {
    if (name !== this._selected) {
      this._selected = name;
      this._kernelspecsChanged.emit();
    }
  }

  checkRun(name: string): CheckRun | null {
    return this._checks.get(name) ?? null;
  }

  schema(): Promise<Record<string, any>> {
    if (!this._schema) {
      this._schema = getKernelSchema(this.serverSettings);
      // a failed fetch must not stick: the next open of the form retries
      this._schema.catch(() => (this._schema = null));
    }
    return this._schema;
  }

  listHosts(sshConfig?: string | null): Promise<IHostList> {
    return listHosts(this.serverSettings, sshConfig);
  }

  discoverKernelspecs(
    alias: string,
    remotePythonPrefix: string,
    sshConfig?: string | null
  ): Promise<IRemoteKernelspecs> {
    return discoverKernelspecs(
      this.serverSettings,
      alias,
      remotePythonPrefix,
      sshConfig
    );
  }

  discoverEnvironments(
    alias: string,
    sshConfig?: string | null
  ): Promise<IEnvironments> {
    return discoverEnvironments(this.serverSettings, alias, sshConfig);
  }

  async refreshKernelspecs(): Promise<void> {
    try {
      const entries = await listKernelspecs(this.serverSettings);
      this._kernelspecs = entries.filter(e => e.ssh);
      this._kernelspecsError = null;
    } catch (error) {
      this._kernelspecsError = describeError(error);
    }
    this._kernelspecsChanged.emit();
  }

  async add(data: KernelFormData): Promise<IKernelspecEntry> {
    const entry = await addKernelspec(this.serverSettings, data);
    this._selected = entry.name;
    await this._afterChange();
    return entry;
  }

  async edit(name: string, patch: KernelFormData): Promise<IKernelspecEntry> {
    const entry = await editKernelspec(this.serverSettings, name, patch);
    // the last check was for the old settings
    this._checks.delete(name);
    await this._afterChange();
    return entry;
  }

  async remove(name: string): Promise<void> {
    await deleteKernelspec(this.serverSettings, name);
    this._checks.delete(name);
    if (this._selected === name) {
      this._selected = null;
    }
    await this._afterChange();
  }

  check(name: string): CheckRun {
    const run = new CheckRun(name);
    this._checks.set(name, run);
    run.changed.connect(() => this._kernelspecsChanged.emit());
    void run.run(this.serverSettings);
    return run;
  }

  // ---- running SSH kernels and their tunnels (polled) ---------------------

  get tunnelsChanged(): ISignal<this, void> {
    return this._tunnelsChanged;
  }

  get tunnels(): readonly ITunnelStatus[] {
    return this._tunnels;
  }

  get tunnelsError(): string | null {
    return this._tunnelsError;
  }

  get tunnelsPolled(): boolean {
    return this._tunnelsPolled;
  }

  tunnelByKernelId(id: string | null | undefined): ITunnelStatus | null {
    return this._tunnels.find(k => k.kernel_id === id) ?? null;
  }

  tunnelsOfKernelspec(name: string): ITunnelStatus[] {
    return this._tunnels.filter(k => k.kernelspec === name);
  }

  get cancelledLaunches(): ReadonlySet<string> {
    return this._cancelled;
  }

  async cancelLaunch(kernelId: string): Promise<void> {
    // noted before the request: the poll that sees the job end may come first
    this._cancelled.add(kernelId);
    try {
      await cancelLaunch(this.serverSettings, kernelId);
    } catch (error) {
      this._cancelled.delete(kernelId);
      throw error;
    }
    await this.refreshTunnels();
  }

  async refreshTunnels(): Promise<void> {
    await this._poll.refresh();
    // the poll's next tick is its answer (resolved or rejected); disposal
    // rejects it, which is no failure of this call
    await this._poll.tick.catch(() => undefined);
  }

  // ---- kernels left running by a server that is gone ----------------------

  get orphansChanged(): ISignal<this, void> {
    return this._orphansChanged;
  }

  get orphans(): readonly IOrphan[] {
    return this._orphans;
  }

  get orphansError(): string | null {
    return this._orphansError;
  }

  get orphanBusy(): string | null {
    return this._orphanBusy;
  }

  get orphanOutcome(): IOrphanOutcome | null {
    return this._orphanOutcome;
  }

  async refreshOrphans(): Promise<void> {
    try {
      this._orphans = await listOrphans(this.serverSettings);
      this._orphansError = null;
    } catch (error) {
      this._orphansError = describeError(error);
    }
    this._orphansChanged.emit();
  }

  attachOrphan(orphan: IOrphan): Promise<boolean> {
    return this._orphanAction('attach', orphan, async () => {
      await attachOrphan(this.serverSettings, orphan.kernel_id);
    });
  }

  shutDownOrphan(orphan: IOrphan): Promise<boolean> {
    return this._orphanAction('shutDown', orphan, () =>
      shutDownOrphan(this.serverSettings, orphan.kernel_id)
    );
  }

  // ---- the server extension's version -------------------------------------

  get serverStatusChanged(): ISignal<this, void> {
    return this._serverStatusChanged;
  }

  get serverStatus(): ServerStatus | null {
    return this._serverStatus;
  }

  async refreshServerStatus(): Promise<void> {
    const status = await fetchServerStatus(
      this.serverSettings,
      this._frontendVersion
    );
    if (!this._isDisposed) {
      this._serverStatus = status;
      this._serverStatusChanged.emit();
    }
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._poll.dispose();
    Signal.clearData(this);
  }

  private async _afterChange(): Promise<void> {
    await Promise.all([
      this.refreshKernelspecs(),
      this._refreshSpecs().catch(error =>
        console.warn('sshpyk: could not refresh the kernelspecs', error)
      )
    ]);
  }

  private async _pollTunnels(): Promise<void> {
    try {
      const tunnels = await getTunnelStatus(this.serverSettings);
      const changed =
        !this._tunnelsPolled ||
        JSON.stringify(tunnels) !== JSON.stringify(this._tunnels) ||
        this._tunnelsError !== null;
      this._tunnels = tunnels;
      this._tunnelsError = null;
      this._tunnelsPolled = true;
      if (changed) {
        this._tunnelsChanged.emit();
      }
    } catch (error) {
      this._tunnelsError = describeError(error);
      this._tunnelsChanged.emit();
      throw error; // lets the poll back off
    }
  }

  /**
   * One action on an orphan at a time: `orphanBusy` names it meanwhile, the
   * outcome stays for the panel to say, and the list is asked again after.
   */
  private async _orphanAction(
    action: IOrphanOutcome['action'],
    orphan: IOrphan,
    work: () => Promise<void>
  ): Promise<boolean> {
    this._orphanBusy = orphan.kernel_id;
    this._orphanOutcome = null;
    this._orphansChanged.emit();
    let error: string | null = null;
    try {
      await work();
    } catch (reason) {
      error = describeError(reason);
    }
    this._orphanBusy = null;
    this._orphanOutcome = { action, orphan, error };
    this._orphansChanged.emit();
    await this.refreshOrphans();
    return error === null;
  }

  private readonly _refreshSpecs: () => Promise<void>;
  private readonly _frontendVersion: string | undefined;
  private _isDisposed = false;

  private _kernelspecs: IKernelspecEntry[] | null = null;
  private _kernelspecsError: string | null = null;
  private _selected: string | null = null;
  private _schema: Promise<Record<string, any>> | null = null;
  private _checks = new Map<string, CheckRun>();
  private _kernelspecsChanged = new Signal<this, void>(this);

  private _poll: Poll;
  private _tunnels: ITunnelStatus[] = [];
  private _tunnelsError: string | null = null;
  private _tunnelsPolled = false;
  private _tunnelsChanged = new Signal<this, void>(this);
  private _cancelled = new Set<string>();

  private _orphans: IOrphan[] = [];
  private _orphansError: string | null = null;
  private _orphanBusy: string | null = null;
  private _orphanOutcome: IOrphanOutcome | null = null;
  private _orphansChanged = new Signal<this, void>(this);

  private _serverStatus: ServerStatus | null = null;
  private _serverStatusChanged = new Signal<this, void>(this);
}

export namespace SshpykModel {
  /**
   * What the model is made with.
   */
  export interface IOptions {
    /**
     * Usually `app.serviceManager.serverSettings`.
     */
    serverSettings: ServerConnection.ISettings;
    /**
     * Tells Lab the kernelspecs changed, so the launcher shows an added,
     * edited or deleted SSH kernel at once instead of on its next poll.
     */
    refreshSpecs?: () => Promise<void>;
    /**
     * How often the tunnel status is polled, in ms (2000).
     */
    pollInterval?: number;
    /**
     * Start polling the tunnel status at once (true); when false, the first
     * `refreshTunnels` starts it.
     */
    poll?: boolean;
    /**
     * The version the server extension must match (this package's).
     */
    frontendVersion?: string;
  }
}
