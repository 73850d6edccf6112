/**
 * The words for a kernel that runs as a Slurm job, from the `slurm` member of
 * its status: queued (with squeue's reason and Slurm's estimated start, in
 * this browser's time zone), starting on a node, running there with the time
 * left before the job's time limit, or why the job ended. Pure functions, for
 * the status bar item, the sidebar and the notifications alike.
 */
import { nullTranslator, TranslationBundle } from '@jupyterlab/translation';

import { ITunnelStatus } from '../api';
import { ISlurmStatus } from './api';
import { tunnelLabel } from '../status';

/**
 * What one job is known by, so each notice is given once per job: Slurm's job
 * ids are unique per cluster (the host alias stands for it); a launch that has
 * no job yet goes by its kernel.
 */
export function jobKey(tunnel: ITunnelStatus): string {
  const jobId = tunnel.slurm?.job_id;
  return jobId ? `${tunnel.host_alias}#${jobId}` : `kernel:${tunnel.kernel_id}`;
}

/**
 * Whether the kernel's launch can still be cancelled: a Slurm job queued or
 * starting (the kernel is launching and its job has not ended).
 */
export function isCancellable(tunnel: ITunnelStatus | null): boolean {
  return !!tunnel?.slurm && tunnel.state === 'launching' && !tunnel.slurm.ended;
}

/**
 * A clock time in this browser's time zone: `14:05`, with the day when it is
 * not today (`Mon 14:05`).
 */
export function clockTime(epochSeconds: number, now = Date.now()): string {
  const at = new Date(epochSeconds * 1000);
  const time = at.toLocaleTimeString([], {
    hour: '2-digit',
    minute: '2-digit'
  });
  if (at.toDateString() === new Date(now).toDateString()) {
    return time;
  }
  return `${at.toLocaleDateString([], { weekday: 'short' })} ${time}`;
}

/**
 * A duration in words, rounded down to the minute: `less than a minute`,
 * `9 min`, `2 h 5 min`, `3 d 4 h`.
 */
export function durationWords(
  seconds: number,
  trans: TranslationBundle = nullTranslator.load('sshpyk')
): string {
  const minutes = Math.floor(Math.max(0, seconds) / 60);
  if (minutes < 1) {
    return trans.__('less than a minute');
  }
  if (minutes < 60) {
    return trans.__('%1 min', minutes);
  }
  const hours = Math.floor(minutes / 60);
  if (hours < 24) {
    return trans.__('%1 h %2 min', hours, minutes % 60);
  }
  return trans.__('%1 d %2 h', Math.floor(hours / 24), hours % 24);
}

/**
 * "queued: Resources, est. start 14:05": built from the fields (so the time
 * is in this browser's zone), else the server's launch step.
 */
function queuedWords(
  slurm: ISlurmStatus,
  step: string | null,
  now: number,
  trans: TranslationBundle
): string | null {
  if (slurm.state !== 'PENDING') {
    return step;
  }
  const reason = slurm.reason || trans.__('waiting');
  return slurm.est_start !== null
    ? trans.__(
        'queued: %1, est. start %2',
        reason,
        clockTime(slurm.est_start, now)
      )
    : trans.__('queued: %1', reason);
}

/**
 * The words for a kernel's state, for the status bar and the sidebar: a
 * Slurm kernel says where its job is (queued, starting, the node it runs on,
 * why it ended), any other kernel what `tunnelLabel` says.
 */
export function kernelLabel(
  tunnel: ITunnelStatus,
  trans: TranslationBundle = nullTranslator.load('sshpyk'),
  now = Date.now()
): string {
  const slurm = tunnel.slurm;
  if (!slurm) {
    return tunnelLabel(tunnel.state, tunnel.step, trans);
  }
  if (slurm.ended) {
    // instead of "dead": why the job ended
    return slurm.ended;
  }
  if (tunnel.state === 'launching') {
    const words = queuedWords(slurm, tunnel.step, now, trans);
    if (words) {
      return words;
    }
  }
  const label = tunnelLabel(tunnel.state, tunnel.step, trans);
  return slurm.node && tunnel.state !== 'launching' && tunnel.state !== 'dead'
    ? trans.__('%1 on %2', label, slurm.node)
    : label;
}

/**
 * The job in a sentence, for a tooltip and the sidebar: "Slurm job 12 on
 * node1, 42 min left (time limit 1:00:00)", "Slurm job 12, queued",
 * "Slurm job (not submitted yet)"; null for a kernel that is no Slurm job.
 */
export function jobDetail(
  tunnel: ITunnelStatus,
  trans: TranslationBundle = nullTranslator.load('sshpyk'),
  now = Date.now()
): string | null {
  const slurm = tunnel.slurm;
  if (!slurm) {
    return null;
  }
  if (!slurm.job_id) {
    return trans.__('Slurm job (not submitted yet)');
  }
  const parts = [
    slurm.node
      ? trans.__('Slurm job %1 on %2', slurm.job_id, slurm.node)
      : trans.__('Slurm job %1', slurm.job_id)
  ];
  if (slurm.ended) {
    parts.push(trans.__('ended'));
  } else if (slurm.state === 'PENDING') {
    parts.push(trans.__('queued'));
  } else if (slurm.ends_at !== null) {
    parts.push(
      trans.__('%1 left', durationWords(slurm.ends_at - now / 1000, trans))
    );
  }
  const text = parts.join(', ');
  return slurm.time_limit && !slurm.ended
    ? trans.__('%1 (time limit %2)', text, slurm.time_limit)
    : text;
}
