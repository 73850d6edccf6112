/**
 * Cancelling a Slurm kernel's launch (queued or starting): the status bar asks
 * first in a small dialog, the sidebar's Cancel button does it at once; both
 * say a failure in a notification.
 */
import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { nullTranslator, TranslationBundle } from '@jupyterlab/translation';

import { ITunnelStatus } from '../api';
import { describeError } from '../errors';
import { ISshpykModel } from '../tokens';
import { kernelLabel } from './words';

/**
 * Cancel the launch (and its Slurm job); resolves with whether it worked.
 */
export async function cancelJob(
  model: ISshpykModel,
  tunnel: ITunnelStatus,
  trans: TranslationBundle = nullTranslator.load('sshpyk')
): Promise<boolean> {
  try {
    await model.cancelLaunch(tunnel.kernel_id);
    return true;
  } catch (error) {
    Notification.error(
      trans.__(
        'Could not cancel Slurm job %1: %2',
        tunnel.slurm?.job_id ?? '?',
        describeError(error)
      ),
      { autoClose: false }
    );
    return false;
  }
}

/**
 * Ask "Cancel Slurm job 12 (queued: Resources)?" and cancel it on yes;
 * resolves with whether it was cancelled.
 */
export async function confirmCancelJob(
  model: ISshpykModel,
  tunnel: ITunnelStatus,
  trans: TranslationBundle = nullTranslator.load('sshpyk')
): Promise<boolean> {
  const job = tunnel.slurm?.job_id;
  const label = kernelLabel(tunnel, trans);
  const answer = await showDialog({
    title: job
      ? trans.__('Cancel Slurm job %1 (%2)?', job, label)
      : trans.__('Cancel the Slurm job (%1)?', label),
    body: trans.__(
      'The kernel on %1 does not start, and its job leaves the queue.',
      tunnel.host_alias
    ),
    buttons: [
      Dialog.cancelButton({ label: trans.__('Keep Waiting') }),
      Dialog.warnButton({ label: trans.__('Cancel Job') })
    ]
  });
  return answer.button.accept ? cancelJob(model, tunnel, trans) : false;
}
