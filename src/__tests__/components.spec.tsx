import { ServerConnection } from '@jupyterlab/services';
import { nullTranslator } from '@jupyterlab/translation';
import { Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';
import * as React from 'react';
import { act } from 'react';
import { createRoot } from 'react-dom/client';

import { CheckRun } from '../checks';
import { SshpykModel } from '../model';
import { IOrphan } from '../api';
import { CheckResults } from '../sidebar/checks';
import { leaseWords, Orphans } from '../sidebar/orphans';
import { CurrentTunnel, TunnelStatusItem } from '../statusbar';

(globalThis as any).IS_REACT_ACT_ENVIRONMENT = true;

const settings = ServerConnection.makeSettings({
  baseUrl: 'http://localhost:8888/'
});

function reply(body: unknown): Response {
  return new Response(JSON.stringify(body), { status: 200 });
}

describe('CheckResults', () => {
  it('shows each finished check and the run still going', async () => {
    const run = new CheckRun('k');
    (run as any)._checks = [
      { id: 'ssh', title: 'SSH connection', status: 'ok', value: '12 ms' },
      { id: 'py', title: 'Remote Python', status: 'fail', hint: 'install it' }
    ];
    const host = document.createElement('div');
    const root = createRoot(host);
    await act(async () => root.render(<CheckResults run={run} />));
    const items = host.querySelectorAll('li');
    expect(Array.from(items).map(li => li.dataset.status)).toEqual([
      'ok',
      'fail',
      'running'
    ]);
    expect(host.textContent).toContain('install it');
    expect(
      host.querySelector('[data-testid="sshpyk-check-summary"]')?.textContent
    ).toBe('Checking…');
    await act(async () => root.unmount());
  });
});

describe('CurrentTunnel', () => {
  let makeRequest: jest.SpyInstance;

  beforeEach(() => {
    makeRequest = jest.spyOn(ServerConnection, 'makeRequest');
  });

  afterEach(() => {
    makeRequest.mockRestore();
  });

  function widgetWithKernel(name: string, id: string): Widget {
    const widget = new Widget();
    (widget as any).sessionContext = {
      kernelChanged: new Signal({}),
      statusChanged: new Signal({}),
      session: { kernel: { name, id } }
    };
    return widget;
  }

  it('names the host and state of an SSH kernel, nothing for a local one', async () => {
    makeRequest.mockImplementation(async (url: string) =>
      url.endsWith('/sshpyk/kernelspecs')
        ? reply({
            kernels: [
              { name: 'python3', ssh: false },
              {
                name: 'remote-py',
                ssh: true,
                config: { ssh_host_alias: 'remote', display_name: 'R' }
              }
            ]
          })
        : reply({
            kernels: [
              {
                kernel_id: 'k1',
                kernelspec: 'remote-py',
                host_alias: 'remote',
                state: 'launching',
                step: 'forwarding ports',
                since: 0,
                rtt_ms: null
              }
            ]
          })
    );
    const model = new SshpykModel({
      serverSettings: settings,
      pollInterval: 60000
    });
    await model.refreshKernelspecs();
    // the poll's first tick is asynchronous
    for (let i = 0; i < 50 && model.tunnels.length === 0; i++) {
      await new Promise(resolve => setTimeout(resolve, 10));
    }
    const current = new CurrentTunnel(model, nullTranslator.load('sshpyk'));

    current.follow(widgetWithKernel('remote-py', 'k1'));
    expect(current.info).toEqual({
      kernelId: 'k1',
      kernelspec: 'remote-py',
      hostAlias: 'remote',
      sshConfig: null,
      state: 'launching',
      label: 'launching: forwarding ports',
      job: null,
      cancellable: false
    });

    current.enabled = false;
    expect(current.info).toBeNull();
    current.enabled = true;

    current.follow(widgetWithKernel('python3', 'k2'));
    expect(current.info).toBeNull();

    // not yet listed by the server: still launching
    current.follow(widgetWithKernel('remote-py', 'k3'));
    expect(current.info?.state).toBe('launching');
    expect(current.info?.label).toBe('launching');

    model.dispose();
    current.dispose();
  });

  it('refreshes the launcher after a change', async () => {
    makeRequest.mockImplementation(async (url: string, init: RequestInit) =>
      init.method === 'POST'
        ? new Response('{"name": "n", "ssh": true}', { status: 201 })
        : reply({ kernels: [{ name: 'n', ssh: true }] })
    );
    const refreshSpecs = jest.fn(async () => {});
    const model = new SshpykModel({
      serverSettings: settings,
      refreshSpecs,
      poll: false
    });
    await model.add({ kernel_name: 'n' });
    expect(refreshSpecs).toHaveBeenCalledTimes(1);
    expect(model.selected).toBe('n');
    expect(model.kernelspecs?.map(k => k.name)).toEqual(['n']);
    model.dispose();
  });
});

describe('Orphans', () => {
  const trans = nullTranslator.load('sshpyk');
  const orphan: IOrphan = {
    kernel_id: 'k1',
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

  it('says how long a kernel left running has before its lease ends it', () => {
    expect(
      leaseWords({ ...orphan, elsewhere: true, on_host: 'login2' }, trans)
    ).toBe('runs on another host (login2) that shares your home directory');
    expect(leaseWords(orphan, trans)).toBe('ends by itself in 60 min');
    expect(leaseWords({ ...orphan, lease_age: 3550 }, trans)).toBe(
      'ends by itself in 50 s'
    );
    expect(leaseWords({ ...orphan, attached: true }, trans)).toBe(
      'in use by another Jupyter server'
    );
    expect(
      leaseWords({ ...orphan, reachable: false, error: 'timed out' }, trans)
    ).toBe('host unreachable: timed out');
  });

  it('lists them from the server and re-attaches one on click', async () => {
    const calls: string[] = [];
    const fetchMock = jest.fn(
      async (input: RequestInfo, init?: RequestInit) => {
        const url = (typeof input === 'string' ? input : input.url).split(
          '?'
        )[0];
        const method =
          typeof input === 'string' ? (init?.method ?? 'GET') : input.method;
        calls.push(`${method} ${url}`);
        if (url.endsWith('/attach')) {
          return new Response(JSON.stringify({ id: 'k1', name: 'ssh-gpu' }), {
            status: 201
          });
        }
        return reply({ kernels: calls.length > 1 ? [] : [orphan] });
      }
    );
    const local = ServerConnection.makeSettings({
      baseUrl: 'http://localhost:8888/',
      fetch: fetchMock as any
    });
    const model = new SshpykModel({ serverSettings: local, poll: false });
    const host = document.createElement('div');
    const root = createRoot(host);
    await act(async () => {
      root.render(<Orphans model={model} trans={trans} />);
      // what the sidebar does when it is made
      await model.refreshOrphans();
    });
    expect(host.textContent).toContain('Python on gpu');
    const attach = [...host.querySelectorAll('button')].find(
      b => b.textContent === 'Re-attach'
    )!;
    await act(async () => {
      attach.click();
    });
    expect(calls).toContain(
      'POST http://localhost:8888/sshpyk/orphans/k1/attach'
    );
    expect(host.textContent).toContain('runs in this server again');
    root.unmount();
    model.dispose();
  });
});

describe('TunnelStatusItem', () => {
  function itemFor(info: Record<string, unknown>) {
    const changed = new Signal<any, void>({});
    const current = { changed, info } as unknown as CurrentTunnel;
    const open = jest.fn();
    const login = jest.fn();
    const item = new TunnelStatusItem(
      current,
      open,
      nullTranslator.load('sshpyk'),
      login
    );
    return { item, open, login };
  }

  async function body(item: TunnelStatusItem): Promise<HTMLElement> {
    await act(async () => {
      Widget.attach(item, document.body);
    });
    return item.node.querySelector(
      '[data-testid="sshpyk-status-item"]'
    ) as HTMLElement;
  }

  it('logs in again on a click when the login ended, else shows the kernel', async () => {
    const needed = itemFor({
      kernelspec: 'otp-py',
      hostAlias: 'otp',
      sshConfig: '/home/u/.ssh/hpc',
      state: 'login_needed',
      label: 'login needed'
    });
    const node = await body(needed.item);
    expect(node.textContent).toBe('otp: login needed');
    expect(node.title).toContain('log in again');
    node.click();
    expect(needed.login).toHaveBeenCalledWith('otp', '/home/u/.ssh/hpc');
    expect(needed.open).not.toHaveBeenCalled();
    Widget.detach(needed.item);

    const connected = itemFor({
      kernelspec: 'otp-py',
      hostAlias: 'otp',
      sshConfig: null,
      state: 'connected',
      label: 'connected'
    });
    (await body(connected.item)).click();
    expect(connected.open).toHaveBeenCalledWith('otp-py');
    expect(connected.login).not.toHaveBeenCalled();
    Widget.detach(connected.item);
  });
});
