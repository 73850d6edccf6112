/**
 * The Slurm part of the REST API: the `slurm` member of a Slurm kernel's
 * status (`GET /sshpyk/status`) and the route that cancels a launch still in
 * progress. Through `requestAPI` like every call; a jest test
 * (`openapi.spec.ts`) holds the route and the status's fields against the
 * OpenAPI document.
 */
import { ServerConnection } from '@jupyterlab/services';

import { requestAPI } from '../request';
import { SlurmJobState } from '../states';

/**
 * The Slurm routes below `<base_url>/sshpyk/`, spelled as the OpenAPI
 * document's `paths` spell them.
 */
export const SLURM_ROUTES = {
  kernelCancel: 'kernels/{kernel_id}/cancel'
} as const;

/**
 * The Slurm job of a kernel on a compute node (times are epoch seconds).
 */
export interface ISlurmStatus {
  /** null until sbatch answered */
  job_id: string | null;
  state: SlurmJobState | null;
  /** squeue's reason while PENDING (`Resources`, `Priority`, ...) */
  reason: string | null;
  node: string | null;
  /** Slurm's estimate of the start while PENDING */
  est_start: number | null;
  /** when the job's time limit ends it */
  ends_at: number | null;
  /** when Lab warns that the time limit is near (null: no warning) */
  warn_at: number | null;
  /** the time limit as Slurm spells it (`1:00:00`) */
  time_limit: string | null;
  /** a sentence saying why the job ended, once it did */
  ended: string | null;
}

/**
 * Stop a launch still in progress (a Slurm kernel queued or starting): its
 * Slurm job is cancelled.
 *
 * @throws {SshpykResponseError} 404 when no launch of that kernel is in
 *   progress
 */
export async function cancelLaunch(
  serverSettings: ServerConnection.ISettings,
  kernelId: string
): Promise<void> {
  await requestAPI(
    SLURM_ROUTES.kernelCancel.replace(
      '{kernel_id}',
      encodeURIComponent(kernelId)
    ),
    serverSettings,
    { method: 'POST' }
  );
}
