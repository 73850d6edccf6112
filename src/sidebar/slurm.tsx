/**
 * A Slurm kernel's job in the sidebar's kernel card: the job id, the node and
 * the time left before the job's time limit (redone every 30 s), and a Cancel
 * button while the job is queued or starting.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { ITunnelStatus } from '../api';
import { cancelJob } from '../slurm/cancel';
import { isCancellable, jobDetail } from '../slurm/words';
import { ISshpykModel } from '../tokens';

const TICK = 30 * 1000;

/**
 * The time now, redone every `interval` ms while the component is shown.
 */
function useNow(interval: number): number {
  const [now, setNow] = React.useState(() => Date.now());
  React.useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), interval);
    return () => clearInterval(timer);
  }, [interval]);
  return now;
}

export function SlurmJob(props: {
  model: ISshpykModel;
  tunnel: ITunnelStatus;
  trans: TranslationBundle;
}): JSX.Element | null {
  const { model, tunnel, trans } = props;
  const now = useNow(TICK);
  const [busy, setBusy] = React.useState(false);
  const detail = jobDetail(tunnel, trans, now);
  if (detail === null) {
    return null;
  }
  const job = tunnel.slurm?.job_id;
  return (
    <span className="jp-sshpyk-SlurmJob" data-testid="sshpyk-slurm-job">
      <span data-testid="sshpyk-slurm-detail">{detail}</span>
      {isCancellable(tunnel) && (
        <button
          className="jp-mod-styled jp-mod-warn jp-sshpyk-SlurmJob-cancel"
          data-testid="sshpyk-slurm-cancel"
          disabled={busy}
          title={
            job
              ? trans.__('Cancel Slurm job %1: the kernel does not start', job)
              : trans.__('Cancel the Slurm job: the kernel does not start')
          }
          onClick={async event => {
            // the card's own click selects it; this one only cancels
            event.stopPropagation();
            setBusy(true);
            await cancelJob(model, tunnel, trans);
            setBusy(false);
          }}
        >
          {busy ? trans.__('Cancelling…') : trans.__('Cancel')}
        </button>
      )}
    </span>
  );
}
