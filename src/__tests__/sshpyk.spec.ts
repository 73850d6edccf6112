import { ServerConnection } from '@jupyterlab/services';

import { getVersion, requestAPI } from '../api';
import {
  FRONTEND_VERSION,
  fetchServerStatus,
  isCompatible,
  toPep440
} from '../version';

const settings = ServerConnection.makeSettings({
  baseUrl: 'http://localhost:8888/lab-base/'
});

// Resolves to the rejection so its fields can be checked one by one.
async function rejectionOf(
  promise: Promise<unknown>
): Promise<ServerConnection.ResponseError> {
  try {
    await promise;
  } catch (error) {
    return error as ServerConnection.ResponseError;
  }
  throw new Error('expected a rejection');
}

function reply(status: number, body: string): Response {
  return new Response(body, {
    status,
    statusText: status === 200 ? 'OK' : 'Error'
  });
}

describe('version compatibility', () => {
  it('reads the frontend version from package.json', () => {
    expect(FRONTEND_VERSION).toMatch(/^\d+\.\d+\.\d+/);
  });

  it.each([
    ['0.1.0', '0.1.0'],
    ['0.2.0-alpha.1', '0.2.0a1'],
    ['0.2.0-beta.3', '0.2.0b3'],
    ['1.0.0-rc.0', '1.0.0rc0'],
    ['not-semver', 'not-semver']
  ])('spells %s as %s in PEP 440', (npm, python) => {
    expect(toPep440(npm)).toBe(python);
  });

  it('accepts the same release in either spelling', () => {
    expect(isCompatible('0.1.0', '0.1.0')).toBe(true);
    expect(isCompatible('0.2.0-rc.1', '0.2.0rc1')).toBe(true);
  });

  it('rejects another release', () => {
    expect(isCompatible('0.1.0', '0.1.1')).toBe(false);
    expect(isCompatible('0.1.0', 'dev')).toBe(false);
  });
});

describe('requestAPI', () => {
  let makeRequest: jest.SpyInstance;

  beforeEach(() => {
    makeRequest = jest.spyOn(ServerConnection, 'makeRequest');
  });

  afterEach(() => {
    makeRequest.mockRestore();
  });

  it('joins the base URL, the namespace and the end point', async () => {
    makeRequest.mockResolvedValue(reply(200, '{"version": "0.1.0"}'));

    await expect(getVersion(settings)).resolves.toEqual({ version: '0.1.0' });
    expect(makeRequest).toHaveBeenCalledWith(
      'http://localhost:8888/lab-base/sshpyk/version',
      { method: 'GET' },
      settings
    );
  });

  it("throws a ResponseError carrying the server's message", async () => {
    makeRequest.mockResolvedValue(
      reply(403, '{"message": "Forbidden: no token", "reason": null}')
    );

    const error = await rejectionOf(requestAPI('version', settings));
    expect(error).toBeInstanceOf(ServerConnection.ResponseError);
    expect(error.message).toBe('Forbidden: no token');
    expect(error.response.status).toBe(403);
  });

  it('falls back to the HTTP status when the body is not JSON', async () => {
    makeRequest.mockResolvedValue(reply(502, '<html>Bad gateway</html>'));

    const error = await rejectionOf(requestAPI('version', settings));
    expect(error).toBeInstanceOf(ServerConnection.ResponseError);
    expect(error.message).toBe('502 Error');
  });

  it('wraps a failed fetch in a NetworkError', async () => {
    makeRequest.mockRejectedValue(new TypeError('Failed to fetch'));

    await expect(requestAPI('version', settings)).rejects.toBeInstanceOf(
      ServerConnection.NetworkError
    );
  });

  it('rejects a reply without a version', async () => {
    makeRequest.mockResolvedValue(reply(200, '{"name": "sshpyk"}'));

    await expect(getVersion(settings)).rejects.toThrow('unexpected reply');
  });
});

describe('fetchServerStatus', () => {
  let makeRequest: jest.SpyInstance;

  beforeEach(() => {
    makeRequest = jest.spyOn(ServerConnection, 'makeRequest');
  });

  afterEach(() => {
    makeRequest.mockRestore();
  });

  it('reports the server version when it matches', async () => {
    makeRequest.mockResolvedValue(reply(200, '{"version": "0.1.0"}'));

    await expect(fetchServerStatus(settings, '0.1.0')).resolves.toEqual({
      kind: 'ok',
      version: '0.1.0'
    });
  });

  it('says mismatch when the versions differ', async () => {
    makeRequest.mockResolvedValue(reply(200, '{"version": "0.0.9"}'));

    const status = await fetchServerStatus(settings, '0.1.0');
    expect(status.kind).toBe('error');
    expect(status.kind === 'error' && status.message).toMatch(
      /mismatch.*0\.0\.9.*0\.1\.0/i
    );
  });

  it('explains a missing server extension', async () => {
    makeRequest.mockResolvedValue(reply(404, '<html>Not Found</html>'));

    const status = await fetchServerStatus(settings, '0.1.0');
    expect(status.kind === 'error' && status.message).toMatch(
      /not installed or not enabled/
    );
  });

  it('passes other server errors through', async () => {
    makeRequest.mockResolvedValue(reply(500, '{"message": "boom"}'));

    const status = await fetchServerStatus(settings, '0.1.0');
    expect(status.kind === 'error' && status.message).toMatch(/failed: boom/);
  });
});
