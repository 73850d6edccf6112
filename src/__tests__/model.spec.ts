import { ServerConnection } from '@jupyterlab/services';
import { ISignal } from '@lumino/signaling';

import { IOrphan, ITunnelStatus } from '../api';
import { SshpykModel } from '../model';

type Reply = { status?: number; body?: unknown };
type Handler = (body: any) => Reply | Promise<Reply>;

/**
 * A fake sshpyk server behind `ServerConnection`'s `fetch`: answers the
 * routes a test gives it (404 otherwise) and records every call.
 */
class FakeServer {
  readonly calls: string[] = [];
  readonly settings = ServerConnection.makeSettings({
    baseUrl: 'http://localhost:8888/',
    fetch: ((input: RequestInfo, init?: RequestInit) =>
      this._fetch(input, init)) as any
  });

  on(method: string, path: string, handler: Handler | Reply): this {
    this._routes.set(
      `${method} ${path}`,
      typeof handler === 'function' ? handler : () => handler
    );
    return this;
  }

  private async _fetch(
    input: RequestInfo,
    init?: RequestInit
  ): Promise<Response> {
    const request = typeof input === 'string' ? null : input;
    const url = new URL(request ? request.url : (input as string));
    const method = request ? request.method : (init?.method ?? 'GET');
    const text = request ? await request.text() : String(init?.body ?? '');
    const key = `${method} ${url.pathname}`;
    this.calls.push(key);
    const handler = this._routes.get(key);
    if (!handler) {
      return new Response('{"message": "Not Found"}', { status: 404 });
    }
    const { status = 200, body } = await handler(
      text ? JSON.parse(text) : null
    );
    if (body === undefined) {
      return new Response(null, { status }); // 204 may have no body at all
    }
    return new Response(
      typeof body === 'string' ? body : JSON.stringify(body),
      { status }
    );
  }

  private _routes = new Map<string, Handler>();
}

/**
 * How often a signal fired.
 */
function counter(signal: ISignal<any, void>): () => number {
  let n = 0;
  signal.connect(() => n++);
  return () => n;
}

const tunnel: ITunnelStatus = {
  kernel_id: 'k1',
  kernelspec: 'ssh-gpu',
  host_alias: 'gpu',
  state: 'connected',
  step: null,
  since: 0,
  rtt_ms: 12
};

const orphan: IOrphan = {
  kernel_id: 'o1',
  kernelspec: 'ssh-gpu',
  display_name: 'Python on gpu',
  host_alias: 'gpu',
  started_at: 1700000000,
  server_pid: 42,
  alive: true,
  attached: false,
  reachable: true,
  lease_age: 30,
  error: null,
  config: { lease_timeout: 3600 }
};

describe('SshpykModel', () => {
  let server: FakeServer;
  let model: SshpykModel;

  function makeModel(): SshpykModel {
    // a poll that only runs when asked (its interval outlasts the test)
    model = new SshpykModel({
      serverSettings: server.settings,
      poll: false,
      pollInterval: 60 * 60 * 1000,
      frontendVersion: '1.2.3'
    });
    return model;
  }

  beforeEach(() => {
    server = new FakeServer();
  });

  afterEach(() => {
    model?.dispose();
  });

  describe('kernelspecs', () => {
    it('keeps the SSH ones and announces each load', async () => {
      server.on('GET', '/sshpyk/kernelspecs', {
        body: {
          kernels: [
            { name: 'python3', ssh: false },
            { name: 'ssh-gpu', ssh: true }
          ]
        }
      });
      makeModel();
      const changes = counter(model.kernelspecsChanged);
      expect(model.kernelspecs).toBeNull();
      await model.refreshKernelspecs();
      expect(model.kernelspecs?.map(k => k.name)).toEqual(['ssh-gpu']);
      expect(model.kernelspecsError).toBeNull();
      expect(changes()).toBe(1);
    });

    it('says why a load failed, and keeps what it had', async () => {
      let fail = false;
      server.on('GET', '/sshpyk/kernelspecs', () =>
        fail
          ? { status: 500, body: { message: 'boom' } }
          : { body: { kernels: [{ name: 'ssh-gpu', ssh: true }] } }
      );
      makeModel();
      const changes = counter(model.kernelspecsChanged);
      await model.refreshKernelspecs();
      fail = true;
      await model.refreshKernelspecs();
      expect(model.kernelspecsError).toBe('boom');
      expect(model.kernelspecs?.map(k => k.name)).toEqual(['ssh-gpu']);
      expect(changes()).toBe(2);
    });

    it('announces a new selection, not the same one twice', () => {
      makeModel();
      const changes = counter(model.kernelspecsChanged);
      model.selected = 'a';
      model.selected = 'a';
      model.selected = null;
      expect(changes()).toBe(2);
    });

    it('follows a check run and forgets it when the kernelspec is deleted', async () => {
      server
        .on('POST', '/sshpyk/kernelspecs/ssh-gpu/check', {
          body:
            '{"check": {"id": "ssh", "title": "SSH", "status": "ok"}}\n' +
            '{"done": true, "ok": true}\n'
        })
        .on('DELETE', '/sshpyk/kernelspecs/ssh-gpu', { status: 204 })
        .on('GET', '/sshpyk/kernelspecs', { body: { kernels: [] } });
      makeModel();
      const changes = counter(model.kernelspecsChanged);
      model.selected = 'ssh-gpu';
      const run = model.check('ssh-gpu');
      expect(model.checkRun('ssh-gpu')).toBe(run);
      await new Promise<void>(resolve =>
        run.changed.connect(() => run.state !== 'running' && resolve())
      );
      expect(run.state).toBe('ok');
      expect(run.checks.map(c => c.id)).toEqual(['ssh']);
      // selection, start, one check, the end
      expect(changes()).toBe(4);

      await model.remove('ssh-gpu');
      expect(model.checkRun('ssh-gpu')).toBeNull();
      expect(model.selected).toBeNull();
      expect(server.calls).toEqual([
        'POST /sshpyk/kernelspecs/ssh-gpu/check',
        'DELETE /sshpyk/kernelspecs/ssh-gpu',
        'GET /sshpyk/kernelspecs'
      ]);
    });

    it('fetches the form schema once, and again after a failure', async () => {
      let fail = true;
      server.on('GET', '/sshpyk/openapi.json', () =>
        fail
          ? { status: 500, body: { message: 'boom' } }
          : { body: { components: { schemas: { SSHKernel: { a: 1 } } } } }
      );
      makeModel();
      await expect(model.schema()).rejects.toThrow('boom');
      fail = false;
      await expect(model.schema()).resolves.toEqual({ a: 1 });
      await model.schema();
      expect(server.calls).toHaveLength(2);
    });
  });

  describe('the tunnel status poll', () => {
    it('announces the first answer, then only changes', async () => {
      let tunnels: ITunnelStatus[] = [];
      server.on('GET', '/sshpyk/status', () => ({
        body: { kernels: tunnels }
      }));
      makeModel();
      const changes = counter(model.tunnelsChanged);
      expect(model.tunnelsPolled).toBe(false);

      await model.refreshTunnels();
      expect(model.tunnelsPolled).toBe(true);
      expect(changes()).toBe(1);
      await model.refreshTunnels();
      expect(changes()).toBe(1);

      tunnels = [tunnel, { ...tunnel, kernel_id: 'k2', state: 'lost' }];
      await model.refreshTunnels();
      expect(changes()).toBe(2);
      expect(model.tunnelByKernelId('k2')?.state).toBe('lost');
      expect(model.tunnelByKernelId('nope')).toBeNull();
      expect(model.tunnelsOfKernelspec('ssh-gpu')).toHaveLength(2);
      expect(model.tunnelsOfKernelspec('other')).toEqual([]);
      expect(server.calls).toEqual(Array(3).fill('GET /sshpyk/status'));
    });

    it('says why states are stale while the server fails, and recovers', async () => {
      let fail = true;
      server.on('GET', '/sshpyk/status', () =>
        fail
          ? { status: 502, body: { message: 'host down' } }
          : { body: { kernels: [tunnel] } }
      );
      makeModel();
      const changes = counter(model.tunnelsChanged);
      await model.refreshTunnels();
      expect(model.tunnelsError).toBe('host down');
      expect(model.tunnels).toEqual([]);
      expect(changes()).toBe(1);

      fail = false;
      await model.refreshTunnels();
      expect(model.tunnelsError).toBeNull();
      expect(model.tunnels).toEqual([tunnel]);
      expect(changes()).toBe(2);
    });

    it('starts polling by itself unless told not to, and stops when disposed', async () => {
      server.on('GET', '/sshpyk/status', { body: { kernels: [tunnel] } });
      model = new SshpykModel({
        serverSettings: server.settings,
        pollInterval: 20
      });
      for (let i = 0; i < 100 && server.calls.length < 3; i++) {
        await new Promise(resolve => setTimeout(resolve, 10));
      }
      expect(server.calls.length).toBeGreaterThanOrEqual(3);
      expect(model.tunnels).toEqual([tunnel]);

      model.dispose();
      expect(model.isDisposed).toBe(true);
      const calls = server.calls.length;
      await new Promise(resolve => setTimeout(resolve, 100));
      expect(server.calls.length).toBe(calls);
    });
  });

  describe('kernels left running', () => {
    it('lists them and says why it could not', async () => {
      let fail = false;
      server.on('GET', '/sshpyk/orphans', () =>
        fail
          ? { status: 500, body: { message: 'no registry' } }
          : { body: { kernels: [orphan] } }
      );
      makeModel();
      const changes = counter(model.orphansChanged);
      await model.refreshOrphans();
      expect(model.orphans).toEqual([orphan]);
      fail = true;
      await model.refreshOrphans();
      expect(model.orphansError).toBe('no registry');
      expect(model.orphans).toEqual([orphan]);
      expect(changes()).toBe(2);
    });

    it('re-attaches one: busy meanwhile, its outcome after, the list asked again', async () => {
      let left = [orphan];
      const busyDuring: (string | null)[] = [];
      server
        .on('GET', '/sshpyk/orphans', () => ({ body: { kernels: left } }))
        .on('POST', '/sshpyk/orphans/o1/attach', () => {
          busyDuring.push(model.orphanBusy);
          left = [];
          return { status: 201, body: { id: 'o1', name: 'ssh-gpu' } };
        });
      makeModel();
      await model.refreshOrphans();
      const changes = counter(model.orphansChanged);

      await expect(model.attachOrphan(orphan)).resolves.toBe(true);
      expect(busyDuring).toEqual(['o1']);
      expect(model.orphanBusy).toBeNull();
      expect(model.orphanOutcome).toEqual({
        action: 'attach',
        orphan,
        error: null
      });
      expect(model.orphans).toEqual([]);
      // busy, outcome, the new list
      expect(changes()).toBe(3);
      expect(server.calls).toEqual([
        'GET /sshpyk/orphans',
        'POST /sshpyk/orphans/o1/attach',
        'GET /sshpyk/orphans'
      ]);
    });

    it('keeps the reason a shutdown failed', async () => {
      server
        .on('GET', '/sshpyk/orphans', { body: { kernels: [orphan] } })
        .on('DELETE', '/sshpyk/orphans/o1', {
          status: 409,
          body: { message: 'kernel o1 is busy with another request' }
        });
      makeModel();
      await expect(model.shutDownOrphan(orphan)).resolves.toBe(false);
      expect(model.orphanOutcome).toEqual({
        action: 'shutDown',
        orphan,
        error: 'kernel o1 is busy with another request'
      });
      expect(model.orphans).toEqual([orphan]);
      expect(server.calls).toEqual([
        'DELETE /sshpyk/orphans/o1',
        'GET /sshpyk/orphans'
      ]);
    });
  });

  describe('the server version', () => {
    it('reads it once asked, and says when it does not match', async () => {
      let version = '1.2.3';
      server.on('GET', '/sshpyk/version', () => ({ body: { version } }));
      makeModel();
      const changes = counter(model.serverStatusChanged);
      expect(model.serverStatus).toBeNull();
      await model.refreshServerStatus();
      expect(model.serverStatus).toEqual({ kind: 'ok', version: '1.2.3' });
      version = '1.2.4';
      await model.refreshServerStatus();
      expect(model.serverStatus?.kind).toBe('error');
      expect(changes()).toBe(2);
    });

    it('explains a missing server extension', async () => {
      makeModel();
      await model.refreshServerStatus();
      expect(model.serverStatus).toEqual({
        kind: 'error',
        message: expect.stringMatching(/not installed or not enabled/)
      });
    });
  });

  describe('the form queries', () => {
    it('lists hosts of the default config with a GET and of a named one with a POST', async () => {
      const bodies: unknown[] = [];
      server
        .on('GET', '/sshpyk/hosts', { body: { hosts: [{ alias: 'gpu' }] } })
        .on('POST', '/sshpyk/hosts', body => {
          bodies.push(body);
          return { body: { hosts: [] } };
        });
      makeModel();
      expect((await model.listHosts()).hosts).toEqual([{ alias: 'gpu' }]);
      await model.listHosts('/home/u/.ssh/other');
      expect(bodies).toEqual([{ ssh_config: '/home/u/.ssh/other' }]);
      expect(server.calls).toEqual(['GET /sshpyk/hosts', 'POST /sshpyk/hosts']);
    });

    it('discovers the kernelspecs of a remote environment', async () => {
      let sent: unknown = null;
      server.on('POST', '/sshpyk/hosts/gpu/kernelspecs', body => {
        sent = body;
        return { body: { kernelspecs: [{ name: 'python3' }] } };
      });
      makeModel();
      const found = await model.discoverKernelspecs('gpu', '/opt/env');
      expect(found).toEqual({ kernelspecs: [{ name: 'python3' }] });
      expect(sent).toEqual({ remote_python_prefix: '/opt/env' });
      await expect(
        model.discoverKernelspecs('nope', '/opt/env')
      ).rejects.toThrow();
    });
  });
});
