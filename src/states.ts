/**
 * The states the server reports, as `sshpyk/states.py` defines them.
 *
 * Each vocabulary is a `const` array so a jest test can compare it with the
 * enums of the REST API's OpenAPI document (`sshpyk/resources/openapi.json`,
 * built from the Python enums), and the types follow from the arrays.
 */

/**
 * A running SSH kernel's link: `launching` (starting or re-attaching; the
 * status's `step` says where), `connected` (the host answers pings),
 * `reconnecting` (no answer for a few seconds), `lost` (no answer for longer
 * than the kernel's `lost_timeout`; still trying), `login_needed` (the link
 * ended and the host wants a login to come back: the kernel lives on), `dead`
 * (exited, or never started).
 */
export const TUNNEL_STATES = [
  'launching',
  'connected',
  'reconnecting',
  'lost',
  'login_needed',
  'dead'
] as const;
export type TunnelState = (typeof TUNNEL_STATES)[number];

/**
 * One SSHFS mount of a local directory on the remote host.
 */
export const MOUNT_STATES = [
  'unmounted',
  'mounting',
  'mounted',
  'remounting',
  'failed'
] as const;
export type MountState = (typeof MOUNT_STATES)[number];

/**
 * The verdict of one health check.
 */
export const CHECK_STATUSES = ['ok', 'warn', 'fail', 'skipped'] as const;
export type CheckStatus = (typeof CHECK_STATUSES)[number];

/**
 * An interactive login to a host (password, one-time code, host key):
 * `connecting` (ssh is at work; no question waits), `prompting` (ssh asks
 * something: the login's `prompt`), `connected` (the host's master is up),
 * `failed` (ended without a login; its `error` says why).
 */
export const LOGIN_STATES = [
  'connecting',
  'prompting',
  'connected',
  'failed'
] as const;
export type LoginState = (typeof LOGIN_STATES)[number];

/**
 * A Slurm job's state, in Slurm's own words (squeue's and sacct's `%T` /
 * `State`): `PENDING` while queued (the status's `reason` says why),
 * `RUNNING`, then how it ended (`COMPLETED`, `CANCELLED`, `TIMEOUT`,
 * `OUT_OF_MEMORY`, `NODE_FAIL`, ...); `OTHER` for a word Slurm may add.
 */
export const SLURM_JOB_STATES = [
  'PENDING',
  'RUNNING',
  'SUSPENDED',
  'COMPLETING',
  'COMPLETED',
  'CANCELLED',
  'FAILED',
  'TIMEOUT',
  'NODE_FAIL',
  'PREEMPTED',
  'BOOT_FAIL',
  'DEADLINE',
  'OUT_OF_MEMORY',
  'REQUEUED',
  'RESIZING',
  'REVOKED',
  'SPECIAL_EXIT',
  'STOPPED',
  'CONFIGURING',
  'SIGNALING',
  'STAGE_OUT',
  'OTHER'
] as const;
export type SlurmJobState = (typeof SLURM_JOB_STATES)[number];
