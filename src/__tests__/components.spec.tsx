import { ServerConnection } from '@jupyterlab/services';
import { nullTranslator } from '@jupyterlab/translation';
import { Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';
import * as React from 'react';
import { act } from 'react';
import { createRoot } from 'react-dom/client';

import { CheckRun } from '../checks';
import { KernelsModel } from '../model';
import { CheckResults } from '../sidebar/checks';
import { TunnelStatusModel } from '../status';
import { CurrentTunnel } from '../statusbar';

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
      url.endsWith('/sshpyk/kernels')
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
    const kernels = new KernelsModel(settings);
    const status = new TunnelStatusModel(settings, 60000);
    await kernels.refresh();
    // the poll's first tick is asynchronous
    for (let i = 0; i < 50 && status.kernels.length === 0; i++) {
      await new Promise(resolve => setTimeout(resolve, 10));
    }
    const current = new CurrentTunnel(
      kernels,
      status,
      nullTranslator.load('sshpyk')
    );

    current.follow(widgetWithKernel('remote-py', 'k1'));
    expect(current.info).toEqual({
      kernelspec: 'remote-py',
      hostAlias: 'remote',
      state: 'launching',
      label: 'launching: forwarding ports'
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

    status.dispose();
    current.dispose();
  });

  it('refreshes the launcher after a change', async () => {
    makeRequest.mockImplementation(async (url: string, init: RequestInit) =>
      init.method === 'POST'
        ? new Response('{"name": "n", "ssh": true}', { status: 201 })
        : reply({ kernels: [{ name: 'n', ssh: true }] })
    );
    const refreshSpecs = jest.fn(async () => {});
    const kernels = new KernelsModel(settings, refreshSpecs);
    await kernels.add({ kernel_name: 'n' });
    expect(refreshSpecs).toHaveBeenCalledTimes(1);
    expect(kernels.selected).toBe('n');
    expect(kernels.kernels?.map(k => k.name)).toEqual(['n']);
  });
});
