import { ServerConnection } from '@jupyterlab/services';

import { getVersion } from './api';
import { describeError, isExtensionMissing } from './errors';

/**
 * The version of this frontend package.
 *
 * `tsconfig.json` keeps `rootDir` at `src/`, so `../package.json` cannot be
 * imported as a module; the bundler and ts-jest both resolve a plain require.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const FRONTEND_VERSION: string = require('../package.json').version;

/**
 * Turn an npm/semver version into the PEP 440 spelling Python reports.
 *
 * hatch-nodejs-version derives the Python version from package.json, so the
 * same release reads `0.2.0-alpha.1` in npm and `0.2.0a1` in Python.
 */
export function toPep440(version: string): string {
  const match = /^(\d+\.\d+\.\d+)(?:-(alpha|beta|rc)\.?(\d+))?$/.exec(
    version.trim()
  );
  if (!match) {
    return version.trim();
  }
  const [, release, tag, num] = match;
  if (!tag) {
    return release;
  }
  const short = { alpha: 'a', beta: 'b', rc: 'rc' }[
    tag as 'alpha' | 'beta' | 'rc'
  ];
  return `${release}${short}${num}`;
}

/**
 * Whether the server extension and this frontend come from the same release.
 *
 * Both halves ship in one wheel, so anything but an exact match means a stale
 * install (for example an old wheel in another environment).
 */
export function isCompatible(frontend: string, server: string): boolean {
  return toPep440(frontend) === toPep440(server);
}

/**
 * What the sidebar shows about the server extension.
 */
export type ServerStatus =
  { kind: 'ok'; version: string } | { kind: 'error'; message: string };

/**
 * Fetch the server extension version and explain any problem in words a user
 * can act on.
 */
export async function fetchServerStatus(
  serverSettings: ServerConnection.ISettings,
  frontendVersion: string = FRONTEND_VERSION
): Promise<ServerStatus> {
  let server: string;
  try {
    server = (await getVersion(serverSettings)).version;
  } catch (error) {
    return { kind: 'error', message: serverStatusError(error) };
  }
  if (!isCompatible(frontendVersion, server)) {
    return {
      kind: 'error',
      message:
        `Version mismatch: sshpyk server extension ${server} but frontend ` +
        `${frontendVersion}. Reinstall sshpyk in the environment that runs ` +
        'JupyterLab and restart it.'
    };
  }
  return { kind: 'ok', version: server };
}

/**
 * `describeError`'s words, saying which call failed when that is not already
 * plain (a missing extension, an unreachable server).
 */
function serverStatusError(error: unknown): string {
  const words = describeError(error);
  if (
    isExtensionMissing(error) ||
    error instanceof ServerConnection.NetworkError
  ) {
    return words;
  }
  return error instanceof ServerConnection.ResponseError
    ? `The sshpyk server extension failed: ${words}`
    : `Cannot read the sshpyk server version: ${words}`;
}
