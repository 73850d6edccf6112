/**
 * What Lab shows of a kernel that runs as a Slurm job, against a fake of the
 * server's status and cancel routes (the fetch of the server settings) and
 * the real model, status bar item, sidebar list and notices.
 */
import { Dialog, Notification } from '@jupyterlab/apputils';
import { ServerConnection } from '@jupyterlab/services';
import { nullTranslator } from '@jupyterlab/translation';
import { Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';
import * as React from 'react';
import { act } from 'react';
import { createRoot } from 'react-dom/client';

import { ITunnelStatus } from '../api';
import { ISlurmStatus } from '../slurm/api';
import { SshpykModel } from '../model';
import { KernelspecList } from '../sidebar/list';
import { confirmCancelJob } from '../slurm/cancel';
import { SlurmNotices } from '../slurm/notices';
import {
  clockTime,
  durationWords,
  jobDetail,
  kernelLabel
} from '../slurm/words';
import { CurrentTunnel, TunnelStatusItem } from '../statusbar';

(globalThis as any).IS_REACT_ACT_ENVIRONMENT = true;

const trans = nullTranslator.load('sshpyk');
const NOW = Date.now() / 1000;

function slurm(more: Partial<ISlurmStatus> = {}): ISlurmStatus {
  return {
    job_id: '12',
    state: 'PENDING',
    reason: 'Resources',
    node: null,
    est_start: null,
    ends_at: null,
    warn_at: null,
    time_limit: '1:00:00',
    ended: null,
    ...more
  };
}

function tunnel(more: Partial<ITunnelStatus> = {}): ITunnelStatus {
  return {
    kernel_id: 'k1',
    kernelspec: 'hpc-py',
    host_alias: 'hpc',
    state: 'launching',
    step: 'queued: Resources, est. start 14:05',
    since: 0,
    rtt_ms: null,
    slurm: slurm(),
    ...more
  };
}

const QUEUED = tunnel();
const RUNNING = tunnel({
  state: 'connected',
  step: null,
  rtt_ms: 3,
  slurm: slurm({
    state: 'RUNNING',
    reason: null,
    node: 'node1',
    ends_at: NOW + 42 * 60 + 30,
    warn_at: NOW + 32 * 60 + 30
  })
});
const ENDED_SENTENCE =
  'Slurm job 12 ended: TIMEOUT (the job reached its time limit)';
const ENDED = tunnel({
  state: 'dead',
  step: ENDED_SENTENCE,
  slurm: slurm({
    state: 'TIMEOUT',
    reason: null,
    node: 'node1',
    ends_at: NOW - 5,
    ended: ENDED_SENTENCE
  })
});

/**
 * The sshpyk routes these views call, as the server answers them, with every
 * call made.
 */
class FakeServer {
  kernels: ITunnelStatus[] = [];
  calls: string[] = [];
  cancelStatus = 204;

  readonly settings = ServerConnection.makeSettings({
    baseUrl: 'http://localhost:8888/',
    fetch: (async (request: Request) => {
      const path = new URL(request.url).pathname;
      this.calls.push(`${request.method} ${path}`);
      if (path === '/sshpyk/status') {
        return new Response(JSON.stringify({ kernels: this.kernels }));
      }
      if (path === '/sshpyk/kernelspecs') {
        return new Response(
          JSON.stringify({
            kernels: [
              {
                name: 'hpc-py',
                ssh: true,
                config: {
                  kernel_name: 'hpc-py',
                  display_name: 'Python on hpc',
                  ssh_host_alias: 'hpc',
                  remote_python_prefix: '/opt/env',
                  remote_kernel_name: 'python3'
                }
              }
            ]
          })
        );
      }
      if (request.method === 'POST' && path.endsWith('/cancel')) {
        return this.cancelStatus === 204
          ? new Response(null, { status: 204 })
          : new Response(
              '{"message": "no launch of kernel k1 is in progress"}',
              {
                status: this.cancelStatus
              }
            );
      }
      return new Response('{"message": "Not Found"}', { status: 404 });
    }) as any
  });

  cancels(): string[] {
    return this.calls.filter(c => c.endsWith('/cancel'));
  }
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (condition()) {
      return;
    }
    await new Promise(resolve => setTimeout(resolve, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function notes(): { type: string; message: string }[] {
  return Notification.manager.notifications.map(n => ({
    type: n.type,
    message: n.message
  }));
}

function dialogs(): HTMLElement[] {
  return Array.from(document.querySelectorAll<HTMLElement>('.jp-Dialog'));
}

function widgetWithKernel(name: string, id: string): Widget {
  const widget = new Widget();
  (widget as any).sessionContext = {
    kernelChanged: new Signal({}),
    statusChanged: new Signal({}),
    session: { kernel: { name, id } }
  };
  return widget;
}

async function modelWith(
  server: FakeServer,
  kernels: ITunnelStatus[]
): Promise<SshpykModel> {
  server.kernels = kernels;
  const model = new SshpykModel({
    serverSettings: server.settings,
    poll: false,
    pollInterval: 60000
  });
  await model.refreshKernelspecs();
  await model.refreshTunnels();
  return model;
}

afterEach(async () => {
  Dialog.flush();
  Notification.manager.dismiss();
  await until(() => dialogs().length === 0, 'the dialogs to go');
});

describe('the words for a Slurm kernel', () => {
  it('says queued with the reason and the estimated start in local time', () => {
    const estStart = NOW + 3600;
    expect(kernelLabel(tunnel({ slurm: slurm({ est_start: estStart }) }))).toBe(
      `queued: Resources, est. start ${clockTime(estStart)}`
    );
    expect(kernelLabel(tunnel({ step: null }))).toBe('queued: Resources');
    expect(jobDetail(QUEUED)).toBe('Slurm job 12, queued (time limit 1:00:00)');
    // starting: the server's step
    const starting = tunnel({
      step: 'starting on node1',
      slurm: slurm({ state: 'RUNNING', node: 'node1', reason: null })
    });
    expect(kernelLabel(starting)).toBe('starting on node1');
    // not submitted yet
    expect(
      jobDetail(tunnel({ step: 'submitting', slurm: slurm({ job_id: null }) }))
    ).toBe('Slurm job (not submitted yet)');
  });

  it('names the node and the time left while running', () => {
    expect(kernelLabel(RUNNING)).toBe('connected on node1');
    expect(jobDetail(RUNNING)).toBe(
      'Slurm job 12 on node1, 42 min left (time limit 1:00:00)'
    );
    expect(durationWords(30)).toBe('less than a minute');
    expect(durationWords(2 * 3600 + 5 * 60 + 59)).toBe('2 h 5 min');
    expect(durationWords(3 * 86400 + 4 * 3600)).toBe('3 d 4 h');
  });

  it('says why the job ended instead of "dead"', () => {
    expect(kernelLabel(ENDED)).toBe(ENDED_SENTENCE);
    expect(jobDetail(ENDED)).toBe('Slurm job 12 on node1, ended');
    // a kernel that is no Slurm job still says "dead"
    expect(kernelLabel(tunnel({ state: 'dead', slurm: null }))).toBe('dead');
  });
});

describe('the status bar item of a Slurm kernel', () => {
  let server: FakeServer;
  let model: SshpykModel;
  let current: CurrentTunnel;
  let item: TunnelStatusItem;
  let open: jest.Mock;

  async function show(
    kernels: ITunnelStatus[],
    widget = widgetWithKernel('hpc-py', 'k1')
  ): Promise<HTMLElement> {
    server = new FakeServer();
    model = await modelWith(server, kernels);
    current = new CurrentTunnel(model, trans);
    current.follow(widget);
    open = jest.fn();
    item = new TunnelStatusItem(
      current,
      open,
      trans,
      jest.fn(),
      kernelId =>
        void confirmCancelJob(model, model.tunnelByKernelId(kernelId)!, trans)
    );
    await act(async () => {
      Widget.attach(item, document.body);
    });
    return item.node.querySelector(
      '[data-testid="sshpyk-status-item"]'
    ) as HTMLElement;
  }

  afterEach(() => {
    Widget.detach(item);
    current.dispose();
    model.dispose();
  });

  async function clickDialogButton(label: string): Promise<void> {
    await until(() => dialogs().length === 1, 'the dialog');
    const button = Array.from(
      dialogs()[0].querySelectorAll<HTMLButtonElement>('.jp-Dialog-button')
    ).find(b => b.textContent === label);
    expect(button).toBeDefined();
    button!.click();
    await until(() => dialogs().length === 0, 'the dialog to close');
  }

  it('shows the queue and cancels the job on a click, after asking', async () => {
    const node = await show([QUEUED]);
    // built from the fields (no est_start here), not the server's step
    expect(node.textContent).toBe('hpc: queued: Resources');
    expect(node.title).toContain('Slurm job 12');
    expect(node.title).toContain('cancel');
    expect(node.dataset.cancellable).toBe('true');

    // asked, and kept waiting: nothing is posted
    node.click();
    await until(() => dialogs().length === 1, 'the dialog');
    await until(
      () =>
        dialogs()[0].querySelector('.jp-Dialog-header')?.textContent ===
        'Cancel Slurm job 12 (queued: Resources)?',
      'the question'
    );
    await clickDialogButton('Keep Waiting');
    expect(server.cancels()).toEqual([]);

    // asked again, and cancelled
    node.click();
    await clickDialogButton('Cancel Job');
    await until(() => server.cancels().length === 1, 'the cancel');
    expect(server.cancels()).toEqual(['POST /sshpyk/kernels/k1/cancel']);
    expect(model.cancelledLaunches.has('k1')).toBe(true);
    // the status is asked again at once
    await until(
      () => server.calls[server.calls.length - 1] === 'GET /sshpyk/status',
      'the poll after the cancel'
    );
    expect(open).not.toHaveBeenCalled();
  });

  it('follows a kernel Lab is still starting (its session not made yet)', async () => {
    // what a notebook's session context says while POST /api/sessions waits
    // for the kernel, i.e. for the queue
    const starting = new Widget();
    (starting as any).sessionContext = {
      kernelChanged: new Signal({}),
      statusChanged: new Signal({}),
      session: null,
      kernelDisplayStatus: 'initializing',
      kernelDisplayName: 'Python on hpc',
      kernelPreference: {}
    };
    const other = tunnel({ kernel_id: 'k9', kernelspec: 'other' });
    const node = await show([QUEUED, other], starting);
    expect(node.textContent).toBe('hpc: queued: Resources');
    node.click();
    await clickDialogButton('Cancel Job');
    await until(() => server.cancels().length === 1, 'the cancel');
    expect(server.cancels()).toEqual(['POST /sshpyk/kernels/k1/cancel']);

    // two launches of that kernelspec: which one is this widget's is not
    // known, so it only says launching and offers no cancel
    server.kernels = [QUEUED, { ...QUEUED, kernel_id: 'k2' }];
    await act(async () => {
      await model.refreshTunnels();
    });
    expect(node.textContent).toBe('hpc: launching');
    expect(node.dataset.cancellable).toBeUndefined();
  });

  it('says when the cancel was refused', async () => {
    const node = await show([QUEUED]);
    server.cancelStatus = 404;
    node.click();
    await clickDialogButton('Cancel Job');
    await until(() => notes().length === 1, 'the notification');
    expect(notes()).toEqual([
      {
        type: 'error',
        message:
          'Could not cancel Slurm job 12: no launch of kernel k1 is in progress'
      }
    ]);
    expect(model.cancelledLaunches.has('k1')).toBe(false);
  });

  it('shows the node and time left when running, the reason when ended', async () => {
    const node = await show([RUNNING]);
    expect(node.textContent).toBe('hpc: connected on node1');
    expect(node.title).toContain(
      'Slurm job 12 on node1, 42 min left (time limit 1:00:00)'
    );
    expect(node.dataset.cancellable).toBeUndefined();
    // a running kernel: a click shows it in the panel
    node.click();
    expect(open).toHaveBeenCalledWith('hpc-py');

    server.kernels = [ENDED];
    await act(async () => {
      await model.refreshTunnels();
    });
    expect(node.textContent).toBe(`hpc: ${ENDED_SENTENCE}`);
    expect(node.textContent).not.toContain('dead');
  });
});

describe('the sidebar card of a Slurm kernel', () => {
  it('shows the queued job with a Cancel button that cancels it', async () => {
    const server = new FakeServer();
    const model = await modelWith(server, [QUEUED]);
    const host = document.createElement('div');
    const root = createRoot(host);
    // the panel renders the list again on tunnelsChanged
    const render = () =>
      root.render(
        <KernelspecList
          model={model}
          onEdit={jest.fn()}
          onDelete={jest.fn()}
          trans={trans}
        />
      );
    await act(async () => render());
    const running = host.querySelector('[data-testid="sshpyk-running"]')!;
    expect(running.textContent).toContain('queued: Resources');
    expect(
      host.querySelector('[data-testid="sshpyk-slurm-detail"]')?.textContent
    ).toBe('Slurm job 12, queued (time limit 1:00:00)');
    const cancel = host.querySelector<HTMLButtonElement>(
      '[data-testid="sshpyk-slurm-cancel"]'
    )!;
    expect(cancel.textContent).toBe('Cancel');
    await act(async () => {
      cancel.click();
    });
    await until(() => server.cancels().length === 1, 'the cancel');
    expect(server.cancels()).toEqual(['POST /sshpyk/kernels/k1/cancel']);

    // running: the node and the time left, and no Cancel
    server.kernels = [RUNNING];
    await act(async () => {
      await model.refreshTunnels();
      render();
    });
    expect(running.textContent).toContain('running: connected on node1, 3 ms');
    expect(
      host.querySelector('[data-testid="sshpyk-slurm-detail"]')?.textContent
    ).toBe('Slurm job 12 on node1, 42 min left (time limit 1:00:00)');
    expect(host.querySelector('[data-testid="sshpyk-slurm-cancel"]')).toBe(
      null
    );

    // ended: why, instead of "dead"
    server.kernels = [ENDED];
    await act(async () => {
      await model.refreshTunnels();
      render();
    });
    expect(running.textContent).toContain(ENDED_SENTENCE);
    expect(running.textContent).not.toContain('dead');
    await act(async () => root.unmount());
    model.dispose();
  });
});

/**
 * A `Storage` in memory: what a page's sessionStorage keeps across a reload.
 */
class MemoryStorage {
  items = new Map<string, string>();
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.items.set(key, value);
  }
}

describe('SlurmNotices', () => {
  let server: FakeServer;
  let model: SshpykModel;
  let storage: MemoryStorage;
  const made: SlurmNotices[] = [];

  function notices(): SlurmNotices {
    const n = new SlurmNotices({
      model,
      trans,
      storage: storage as unknown as Storage,
      endedDelay: 50
    });
    made.push(n);
    return n;
  }

  beforeEach(async () => {
    server = new FakeServer();
    storage = new MemoryStorage();
    model = await modelWith(server, []);
  });

  afterEach(() => {
    made.splice(0).forEach(n => n.dispose());
    model.dispose();
  });

  it('warns once per job when its time limit is near, also across a reload', async () => {
    const due = tunnel({
      state: 'connected',
      slurm: slurm({
        state: 'RUNNING',
        node: 'node1',
        ends_at: Date.now() / 1000 + 9 * 60 + 30,
        warn_at: Date.now() / 1000 - 30
      })
    });
    notices();
    server.kernels = [due];
    await model.refreshTunnels();
    expect(notes()).toEqual([
      {
        type: 'warning',
        message:
          'Slurm job 12 (kernel Python on hpc) ends in 9 min (its time limit): save your work.'
      }
    ]);
    const warning = Notification.manager.notifications[0];
    expect(warning.options.autoClose).toBe(false);
    expect(warning.options.actions?.map(a => a.label)).toEqual(['Dismiss']);

    // polled again, and the page reloaded (the same sessionStorage): still one
    server.kernels = [{ ...due, rtt_ms: 5 }];
    await model.refreshTunnels();
    made.pop()!.dispose();
    notices();
    expect(notes()).toHaveLength(1);

    // dismissed: it does not come back
    Notification.manager.dismiss(warning.id);
    await model.refreshTunnels();
    expect(notes()).toHaveLength(0);

    // another job warns
    server.kernels = [
      due,
      { ...due, kernel_id: 'k2', slurm: { ...due.slurm!, job_id: '13' } }
    ];
    await model.refreshTunnels();
    expect(notes().map(n => n.message)).toEqual([
      expect.stringContaining(
        'Slurm job 13 (kernel Python on hpc) ends in 9 min'
      )
    ]);
  });

  it('warns at warn_at by its own timer, without a poll', async () => {
    server.kernels = [
      tunnel({
        state: 'connected',
        slurm: slurm({
          state: 'RUNNING',
          node: 'node1',
          ends_at: Date.now() / 1000 + 630,
          warn_at: Date.now() / 1000 + 0.2
        })
      })
    ];
    await model.refreshTunnels();
    const polls = server.calls.length;
    notices();
    expect(notes()).toEqual([]);
    await until(() => notes().length === 1, 'the warning');
    expect(notes()[0].message).toContain('ends in 10 min');
    expect(server.calls.length).toBe(polls);
  });

  it('says nothing for a job without warn_at, or past its end', async () => {
    notices();
    server.kernels = [
      RUNNING,
      tunnel({
        kernel_id: 'k2',
        state: 'connected',
        slurm: slurm({ job_id: '13', state: 'RUNNING', warn_at: null })
      }),
      tunnel({
        kernel_id: 'k3',
        state: 'connected',
        slurm: slurm({
          job_id: '14',
          state: 'RUNNING',
          warn_at: NOW - 600,
          ends_at: NOW - 1
        })
      })
    ];
    await model.refreshTunnels();
    expect(notes()).toEqual([]);
  });

  it('says once why a job ended, and nothing for a job the user cancelled', async () => {
    notices();
    server.kernels = [ENDED];
    await model.refreshTunnels();
    // said once the kernel stayed listed a moment (it is no shutdown)
    expect(notes()).toEqual([]);
    await until(() => notes().length === 1, 'the notification');
    expect(notes()).toEqual([{ type: 'error', message: ENDED_SENTENCE }]);
    expect(Notification.manager.notifications[0].options.autoClose).toBe(false);
    server.kernels = [{ ...ENDED, rtt_ms: 1 }];
    await model.refreshTunnels();
    made.pop()!.dispose(); // a reload
    notices();
    await new Promise(resolve => setTimeout(resolve, 100));
    expect(notes()).toHaveLength(1);

    // cancelled from this page: its end is no news
    Notification.manager.dismiss();
    server.kernels = [
      { ...QUEUED, kernel_id: 'k2', slurm: slurm({ job_id: '13' }) }
    ];
    await model.refreshTunnels();
    await model.cancelLaunch('k2');
    server.kernels = [
      {
        ...ENDED,
        kernel_id: 'k2',
        slurm: slurm({
          job_id: '13',
          state: 'CANCELLED',
          ended: 'Slurm job 13 ended: CANCELLED'
        })
      }
    ];
    await model.refreshTunnels();
    await new Promise(resolve => setTimeout(resolve, 100));
    expect(notes()).toEqual([]);
  });

  it('says nothing of a job that a shutdown ended', async () => {
    notices();
    const shutDown = "Slurm job 14 was cancelled at the kernel's shutdown";
    server.kernels = [
      {
        ...ENDED,
        kernel_id: 'k3',
        slurm: slurm({ job_id: '14', state: 'CANCELLED', ended: shutDown })
      }
    ];
    await model.refreshTunnels();
    // the kernel leaves the list, as a shut down kernel does
    server.kernels = [];
    await model.refreshTunnels();
    await new Promise(resolve => setTimeout(resolve, 100));
    expect(notes()).toEqual([]);
  });
});
