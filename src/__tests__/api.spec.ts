import { ServerConnection } from '@jupyterlab/services';

import {
  checkKernelspec,
  discoverKernelspecs,
  editKernelspec,
  getVersion,
  ICheck,
  listHosts,
  requestAPI,
  SshpykResponseError
} from '../api';
import { CheckRun, summarize } from '../checks';

const settings = ServerConnection.makeSettings({
  baseUrl: 'http://localhost:8888/'
});

describe('the REST wrappers', () => {
  let makeRequest: jest.SpyInstance;

  beforeEach(() => {
    makeRequest = jest.spyOn(ServerConnection, 'makeRequest');
  });

  afterEach(() => {
    makeRequest.mockRestore();
  });

  it('carries the field of a refused request', async () => {
    makeRequest.mockResolvedValue(
      new Response(
        '{"message": "ssh_host_alias: bad", "field": "ssh_host_alias"}',
        { status: 400 }
      )
    );
    const error = await editKernelspec(settings, 'k', {
      ssh_host_alias: '-x'
    }).catch(e => e);
    expect(error).toBeInstanceOf(SshpykResponseError);
    expect(error.field).toBe('ssh_host_alias');
    expect(makeRequest).toHaveBeenCalledWith(
      'http://localhost:8888/sshpyk/kernelspecs/k',
      { method: 'PATCH', body: '{"ssh_host_alias":"-x"}' },
      settings
    );
  });

  it('names an ssh config only in a POST body, never in a query', async () => {
    makeRequest.mockResolvedValue(
      new Response('{"ssh_config": "/c", "hosts": []}')
    );
    await listHosts(settings, '/tmp/my config');
    expect(makeRequest).toHaveBeenLastCalledWith(
      'http://localhost:8888/sshpyk/hosts',
      { method: 'POST', body: '{"ssh_config":"/tmp/my config"}' },
      settings
    );
    makeRequest.mockResolvedValue(
      new Response('{"ssh_config": "/c", "hosts": []}')
    );
    await listHosts(settings);
    expect(makeRequest).toHaveBeenLastCalledWith(
      'http://localhost:8888/sshpyk/hosts',
      { method: 'GET' },
      settings
    );
  });

  it('discovers remote kernelspecs by POST', async () => {
    makeRequest.mockResolvedValue(new Response('{"kernelspecs": []}'));
    await discoverKernelspecs(settings, 'gpu box', '/opt/env', '/c');
    expect(makeRequest).toHaveBeenLastCalledWith(
      'http://localhost:8888/sshpyk/hosts/gpu%20box/kernelspecs',
      {
        method: 'POST',
        body: '{"remote_python_prefix":"/opt/env","ssh_config":"/c"}'
      },
      settings
    );
  });

  it('reads streamed checks line by line, even split across chunks', async () => {
    const text =
      '{"check": {"id": "a", "title": "A", "status": "ok"}}\n' +
      '{"check": {"id": "b", "title": "B", "status": "warn", "hint": "h"}}\n' +
      '{"done": true, "ok": true}\n';
    // jsdom has no ReadableStream: a reader that hands out two chunks
    const bytes = new TextEncoder().encode(text);
    const chunks = [bytes.slice(0, 30), bytes.slice(30)];
    makeRequest.mockResolvedValue({
      ok: true,
      body: {
        getReader: () => ({
          read: async () =>
            chunks.length
              ? { done: false, value: chunks.shift() }
              : { done: true, value: undefined }
        })
      }
    });
    const seen: ICheck[] = [];
    await expect(
      checkKernelspec(settings, 'k', c => seen.push(c))
    ).resolves.toBe(true);
    expect(seen.map(c => c.id)).toEqual(['a', 'b']);
  });

  it('turns a run that could not start into a readable error', async () => {
    makeRequest.mockResolvedValue(
      new Response('{"message": "\'k\' is a local kernel"}', { status: 422 })
    );
    const run = new CheckRun('k');
    await run.run(settings);
    expect(run.state).toBe('error');
    expect(run.error).toBe("'k' is a local kernel");
  });
});

it('summarizes a run: failures win over warnings', () => {
  const c = (status: ICheck['status']): ICheck => ({
    id: status,
    title: status,
    status
  });
  expect(summarize([c('ok'), c('skipped')])).toBe('ok');
  expect(summarize([c('ok'), c('warn')])).toBe('warning');
  expect(summarize([c('warn'), c('fail')])).toBe('failed');
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

describe('requestAPI', () => {
  const settings = ServerConnection.makeSettings({
    baseUrl: 'http://localhost:8888/lab-base/'
  });

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
