import { ServerConnection } from '@jupyterlab/services';

import {
  FRONTEND_VERSION,
  fetchServerStatus,
  isCompatible,
  toPep440
} from '../version';

const settings = ServerConnection.makeSettings({
  baseUrl: 'http://localhost:8888/lab-base/'
});

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
