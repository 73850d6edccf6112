import { ServerConnection } from '@jupyterlab/services';

/**
 * Whether a failed call means the sshpyk server extension is missing: a 404
 * that is not one of sshpyk's own refusals (those name the kernel, e.g.
 * "no kernelspec 'x'").
 */
export function isExtensionMissing(error: unknown): boolean {
  return (
    error instanceof ServerConnection.ResponseError &&
    error.response.status === 404 &&
    !/sshpyk|kernel/i.test(error.message)
  );
}

/**
 * Words a user can act on for any failure of a call to the server: the
 * server's own message for a refusal, what to do when the server extension is
 * missing, and that the server cannot be reached for a network failure.
 */
export function describeError(error: unknown): string {
  if (isExtensionMissing(error)) {
    return (
      'The sshpyk server extension is not installed or not enabled. ' +
      'Run `jupyter server extension enable sshpyk` and restart JupyterLab.'
    );
  }
  if (error instanceof ServerConnection.NetworkError) {
    return `Cannot reach the Jupyter server: ${error.message}`;
  }
  return error instanceof Error ? error.message : String(error);
}
