/**
 * The Slurm notices: one JupyterLab notification per job when its time limit
 * is near (at the status's `warn_at`), and one when the job ended under a
 * kernel still in use (the status's `ended` sentence: TIMEOUT, OUT_OF_MEMORY,
 * NODE_FAIL, ...).
 *
 * It reads the model's tunnel status (polled there: no poll of its own) and
 * keeps one timer per job to its `warn_at`, so the warning comes on time also
 * while the status poll is slow or backs off. What was said is remembered in
 * the page's `sessionStorage`: a reload says nothing twice, while every open
 * tab says it once (the one the user looks at must show it).
 */
import { Notification } from '@jupyterlab/apputils';
import { nullTranslator, TranslationBundle } from '@jupyterlab/translation';

import { ITunnelStatus } from '../api';
import { ISshpykModel } from '../tokens';
import { durationWords, jobKey } from './words';

const STORAGE_KEY = 'sshpyk:slurm-notices';
/**
 * How many notices are remembered (the oldest are forgotten first).
 */
const REMEMBERED = 200;
/**
 * The longest single wait of a timer: setTimeout takes at most 2^31-1 ms
 * (about 24 days), and a shorter wait that checks again costs nothing.
 */
const LONGEST_WAIT = 60 * 60 * 1000;

/**
 * The notices said already, kept in a Storage when there is one (a browser
 * that refuses storage still says each notice once per page).
 */
class Said {
  constructor(private readonly _storage: Storage | null) {
    try {
      const saved = JSON.parse(_storage?.getItem(STORAGE_KEY) ?? '[]');
      if (Array.isArray(saved)) {
        this._keys = saved.filter(k => typeof k === 'string');
      }
    } catch {
      // unreadable or refused: start afresh
    }
  }

  has(key: string): boolean {
    return this._keys.includes(key);
  }

  add(key: string): void {
    this._keys = [...this._keys.filter(k => k !== key), key].slice(-REMEMBERED);
    try {
      this._storage?.setItem(STORAGE_KEY, JSON.stringify(this._keys));
    } catch {
      // full or refused: remembered for this page only
    }
  }

  private _keys: string[] = [];
}

function defaultStorage(): Storage | null {
  try {
    return window.sessionStorage;
  } catch {
    return null;
  }
}

export class SlurmNotices {
  constructor(options: SlurmNotices.IOptions) {
    this._model = options.model;
    this._trans = options.trans ?? nullTranslator.load('sshpyk');
    this._now = options.now ?? (() => Date.now());
    this._endedDelay = options.endedDelay ?? 5000;
    this._said = new Said(
      options.storage === undefined ? defaultStorage() : options.storage
    );
    this._model.tunnelsChanged.connect(this.check, this);
    this.check();
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /**
   * Look at the model's tunnels now: say what is due, set a timer for each
   * warning to come.
   */
  check(): void {
    if (this._isDisposed) {
      return;
    }
    const waiting = new Set<string>();
    for (const tunnel of this._model.tunnels) {
      const slurm = tunnel.slurm;
      if (!slurm) {
        continue;
      }
      const key = jobKey(tunnel);
      if (slurm.ended) {
        this._ended(tunnel, key);
        continue;
      }
      if (slurm.warn_at === null || tunnel.state === 'dead') {
        continue;
      }
      const now = this._now();
      if (now >= slurm.warn_at * 1000) {
        this._warn(tunnel, key);
      } else if (!this._said.has(`warn:${key}`)) {
        waiting.add(key);
        this._wait(key, slurm.warn_at * 1000 - now);
      }
    }
    // a job gone, or one whose warning moved: its old timer goes
    for (const [key, timer] of this._timers) {
      if (!waiting.has(key)) {
        clearTimeout(timer.handle);
        this._timers.delete(key);
      }
    }
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._model.tunnelsChanged.disconnect(this.check, this);
    this._timers.forEach(timer => clearTimeout(timer.handle));
    this._timers.clear();
    this._endedTimers.forEach(handle => clearTimeout(handle));
    this._endedTimers.clear();
  }

  /**
   * One timer per job, to the moment its warning is due (then `check` looks
   * at the latest status again).
   */
  private _wait(key: string, delay: number): void {
    const due = this._now() + delay;
    const timer = this._timers.get(key);
    if (timer && timer.due === due) {
      return;
    }
    if (timer) {
      clearTimeout(timer.handle);
    }
    const handle = setTimeout(
      () => {
        this._timers.delete(key);
        this.check();
      },
      Math.min(Math.max(0, delay), LONGEST_WAIT)
    );
    this._timers.set(key, { due, handle });
  }

  private _name(tunnel: ITunnelStatus): string {
    const entry = this._model.kernelspecs?.find(
      k => k.name === tunnel.kernelspec
    );
    return (
      entry?.config?.display_name ?? entry?.display_name ?? tunnel.kernelspec
    );
  }

  private _warn(tunnel: ITunnelStatus, key: string): void {
    const slurm = tunnel.slurm!;
    const now = this._now() / 1000;
    if (this._said.has(`warn:${key}`)) {
      return;
    }
    if (slurm.ends_at !== null && now >= slurm.ends_at) {
      // past its limit and still listed: the end is for the next poll to say
      return;
    }
    this._said.add(`warn:${key}`);
    const message =
      slurm.ends_at !== null
        ? this._trans.__(
            'Slurm job %1 (kernel %2) ends in %3 (its time limit): save your work.',
            slurm.job_id ?? '?',
            this._name(tunnel),
            durationWords(slurm.ends_at - now, this._trans)
          )
        : this._trans.__(
            'Slurm job %1 (kernel %2) ends soon (its time limit): save your work.',
            slurm.job_id ?? '?',
            this._name(tunnel)
          );
    Notification.warning(message, {
      autoClose: false,
      actions: [
        {
          label: this._trans.__('Dismiss'),
          caption: this._trans.__('Close this warning'),
          // an action closes the notification by itself
          callback: () => undefined
        }
      ]
    });
  }

  /**
   * Say why a job ended, once it is clear the kernel is not simply being
   * shut down: a shutdown ends the job too ("cancelled at the kernel's
   * shutdown"), and the kernel leaves the list within a poll or two. One
   * still listed after `endedDelay` died with its job.
   */
  private _ended(tunnel: ITunnelStatus, key: string): void {
    if (this._said.has(`ended:${key}`) || this._endedTimers.has(key)) {
      return;
    }
    const handle = setTimeout(() => {
      this._endedTimers.delete(key);
      const still = this._model.tunnelByKernelId(tunnel.kernel_id);
      if (this._isDisposed || !still?.slurm?.ended || jobKey(still) !== key) {
        return;
      }
      this._said.add(`ended:${key}`);
      if (this._model.cancelledLaunches.has(still.kernel_id)) {
        return; // the user cancelled it: no news to them
      }
      Notification.error(still.slurm.ended, { autoClose: false });
    }, this._endedDelay);
    this._endedTimers.set(key, handle);
  }

  private readonly _model: ISshpykModel;
  private readonly _trans: TranslationBundle;
  private readonly _now: () => number;
  private readonly _said: Said;
  private readonly _endedDelay: number;
  private _endedTimers = new Map<string, ReturnType<typeof setTimeout>>();
  private _timers = new Map<
    string,
    { due: number; handle: ReturnType<typeof setTimeout> }
  >();
  private _isDisposed = false;
}

export namespace SlurmNotices {
  export interface IOptions {
    model: ISshpykModel;
    trans?: TranslationBundle;
    /**
     * Where the notices said are remembered (`sessionStorage`; null: this
     * page only).
     */
    storage?: Storage | null;
    /**
     * The clock, in ms since the epoch (`Date.now`).
     */
    now?: () => number;
    /**
     * How long an ended job's kernel must stay listed before its end is said,
     * in ms (5000; a kernel shut down leaves the list before).
     */
    endedDelay?: number;
  }
}
