/**
 * The token other extensions require to use sshpyk's model, e.g. a notebook
 * toolbar badge showing the current SSH kernel's tunnel:
 *
 * ```ts
 * import { ISshpykModel } from 'sshpyk';
 * const plugin = { id: 'x:badge', requires: [ISshpykModel], activate: (app, sshpyk) => {
 *   sshpyk.tunnelsChanged.connect(() => render(sshpyk.tunnelByKernelId(id)));
 * } };
 * ```
 *
 * (The consumer lists `sshpyk` among its `jupyterlab.sharedPackages` with
 * `bundled: false`, so it gets this very token object.)
 */
import { ServerConnection } from '@jupyterlab/services';
import { Token } from '@lumino/coreutils';
import { ISignal } from '@lumino/signaling';

import type {
  IHostList,
  IKernelspecEntry,
  IOrphan,
  IRemoteKernelspecs,
  ITunnelStatus
} from './api';
import type { CheckRun } from './checks';
import type { IEnvironments } from './environments';
import type { KernelFormData } from './formdata';
import type { ServerStatus } from './version';

/**
 * How the last action on an orphan ended (`error` null: it worked).
 */
export interface IOrphanOutcome {
  action: 'attach' | 'shutDown';
  orphan: IOrphan;
  error: string | null;
}

/**
 * The state of sshpyk in this JupyterLab: the SSH kernelspecs (with the
 * selection and check runs), the running SSH kernels' tunnels (polled), the
 * kernels left running by a server that is gone, and the server extension's
 * version. Each part has its own signal, emitted after every change of it.
 * Every `error` is words a user can act on (`describeError`).
 */
export interface ISshpykModel {
  readonly serverSettings: ServerConnection.ISettings;
  readonly isDisposed: boolean;
  /**
   * Stop the poll and disconnect every signal.
   */
  dispose(): void;

  /**
   * Emitted when the kernelspecs, their error, the selection or a check run
   * changed.
   */
  readonly kernelspecsChanged: ISignal<ISshpykModel, void>;
  /**
   * The SSH kernelspecs; `null` until the first load.
   */
  readonly kernelspecs: readonly IKernelspecEntry[] | null;
  /**
   * Why the last load failed (`null` when it worked).
   */
  readonly kernelspecsError: string | null;
  /**
   * The kernelspec the sidebar shows selected.
   */
  selected: string | null;
  /**
   * The last check run of a kernelspec, `null` when never checked (or edited
   * since).
   */
  checkRun(name: string): CheckRun | null;
  /**
   * The SSH kernel model's JSON schema, fetched once (a failure is retried on
   * the next call).
   */
  schema(): Promise<Record<string, any>>;
  /**
   * The Host aliases of an ssh config (without `sshConfig`: the default
   * `~/.ssh/config`), for the form's host picker.
   *
   * @throws {SshpykResponseError} when the config is refused.
   */
  listHosts(sshConfig?: string | null): Promise<IHostList>;
  /**
   * The kernelspecs of a remote environment: connects to the host (for the
   * form's remote kernel picker).
   *
   * @throws {SshpykResponseError} when the host or the prefix fails.
   */
  discoverKernelspecs(
    alias: string,
    remotePythonPrefix: string,
    sshConfig?: string | null
  ): Promise<IRemoteKernelspecs>;
  /**
   * The Python environments of a host: connects to it (for the Add form's
   * short path).
   *
   * @throws {SshpykResponseError} when the host cannot be reached.
   */
  discoverEnvironments(
    alias: string,
    sshConfig?: string | null
  ): Promise<IEnvironments>;
  /**
   * Load the SSH kernelspecs again; never throws (sets `kernelspecsError`).
   */
  refreshKernelspecs(): Promise<void>;
  /**
   * Add an SSH kernelspec, select it and reload.
   *
   * @throws {SshpykResponseError} when the server refuses it
   */
  add(data: KernelFormData): Promise<IKernelspecEntry>;
  /**
   * Edit an SSH kernelspec (a partial edit; `null` restores a default),
   * forget its last check and reload.
   *
   * @throws {SshpykResponseError} when the server refuses it
   */
  edit(name: string, patch: KernelFormData): Promise<IKernelspecEntry>;
  /**
   * Delete an SSH kernelspec and reload.
   *
   * @throws {SshpykResponseError} when the server refuses it
   */
  remove(name: string): Promise<void>;
  /**
   * Start the health checks of a kernelspec; the run reports its progress
   * through its own signal and `kernelspecsChanged`.
   */
  check(name: string): CheckRun;

  /**
   * Emitted when a poll of the tunnel status brought something new, or
   * failed.
   */
  readonly tunnelsChanged: ISignal<ISshpykModel, void>;
  /**
   * The running SSH kernels of this server and their tunnels.
   */
  readonly tunnels: readonly ITunnelStatus[];
  /**
   * Why the last poll failed, so the UI can say why states are stale.
   */
  readonly tunnelsError: string | null;
  /**
   * Whether a poll has answered yet (`tunnels` is then the server's word).
   */
  readonly tunnelsPolled: boolean;
  tunnelByKernelId(id: string | null | undefined): ITunnelStatus | null;
  tunnelsOfKernelspec(name: string): ITunnelStatus[];
  /**
   * Poll now, e.g. right after a kernel was started; resolves once the
   * server answered (never rejects: a failure sets `tunnelsError`).
   */
  refreshTunnels(): Promise<void>;
  /**
   * Stop a launch still in progress (a Slurm kernel queued or starting; its
   * job is cancelled), then poll.
   *
   * @throws {SshpykResponseError} 404 when no launch of it is under way
   */
  cancelLaunch(kernelId: string): Promise<void>;
  /**
   * The kernels whose launch was cancelled from this page (their end is no
   * news to the user).
   */
  readonly cancelledLaunches: ReadonlySet<string>;

  /**
   * Emitted when the orphans, their error, the busy one or the last
   * outcome changed.
   */
  readonly orphansChanged: ISignal<ISshpykModel, void>;
  /**
   * SSH kernels left running by a Jupyter server that is gone (empty until
   * the first `refreshOrphans`).
   */
  readonly orphans: readonly IOrphan[];
  readonly orphansError: string | null;
  /**
   * The kernel id an action is under way for.
   */
  readonly orphanBusy: string | null;
  readonly orphanOutcome: IOrphanOutcome | null;
  /**
   * Ask the hosts again; never throws (sets `orphansError`).
   */
  refreshOrphans(): Promise<void>;
  /**
   * Make an orphan one of this server's kernels again; resolves with whether
   * it worked (`orphanOutcome` says why not), then lists the orphans again.
   */
  attachOrphan(orphan: IOrphan): Promise<boolean>;
  /**
   * Shut an orphan down; as `attachOrphan`.
   */
  shutDownOrphan(orphan: IOrphan): Promise<boolean>;

  /**
   * Emitted when the server status was read.
   */
  readonly serverStatusChanged: ISignal<ISshpykModel, void>;
  /**
   * The server extension's version, or what is wrong with it; `null` until
   * read.
   */
  readonly serverStatus: ServerStatus | null;
  /**
   * Read the server extension's version; never throws.
   */
  refreshServerStatus(): Promise<void>;
}

/**
 * The sshpyk model, provided by the `sshpyk:model` plugin.
 */
export const ISshpykModel = new Token<ISshpykModel>(
  'sshpyk:model',
  'The sshpyk model: SSH kernelspecs, check runs, tunnel status, kernels left running and the server version, with signals.'
);
