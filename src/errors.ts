import { ServerConnection } from '@jupyterlab/services';

/**
 * Words a user can act on for any failure of a call to the server.
 */
export function describeError(error: unknown): string {
  if (error instanceof ServerConnection.ResponseError) {
    if (
      error.response.status === 404 &&
      !/sshpyk|kernel/i.test(error.message)
    ) {
      return (
        'The sshpyk server extension is not installed or not enabled. ' +
        'Run `jupyter server extension enable sshpyk` and restart JupyterLab.'
      );
    }
    return error.message;
  }
  if (error instanceof ServerConnection.NetworkError) {
    return `Cannot reach the Jupyter server: ${error.message}`;
  }
  return error instanceof Error ? error.message : String(error);
}
