/**
 * A kernel on a Slurm compute node, seen from Lab while its job waits in the
 * queue: the status bar and the sidebar say "queued: Resources", and Cancel
 * cancels the job. Against the real Slurm test cluster (`harness/slurm.py`:
 * login host `hpc`, compute host `node1`), built onto the test hosts'
 * instance for this file and removed after it.
 */
import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import type { Locator } from '@playwright/test';
import { execFileSync } from 'child_process';
import * as path from 'path';

import { deleteKernelQuietly, openSidebar, testHosts } from './utils';

const REPO = path.resolve(__dirname, '..', '..');
const PYTHON = path.join(REPO, '.venv', 'bin', 'python');
const KERNEL = 'galata-slurm';
const DISPLAY = 'Galata on Slurm';

/**
 * The harness instance whose ssh config the tests use (`/tmp/spk0/...` is
 * prefix `spk`, index 0).
 */
function instance(sshConfig: string): string[] {
  const name = path.basename(path.dirname(sshConfig));
  const match = /^(.*?)(\d+)$/.exec(name);
  if (!match) {
    throw new Error(`no harness instance in ${sshConfig}`);
  }
  return ['--prefix', match[1], '--index', match[2]];
}

function harnessSlurm(action: 'up' | 'down', sshConfig: string): void {
  execFileSync(
    PYTHON,
    ['-m', 'harness', 'slurm', action, ...instance(sshConfig)],
    { cwd: path.join(REPO, 'tests'), encoding: 'utf-8', stdio: 'pipe' }
  );
}

/**
 * A command on the login host, as the test user (over the instance's ssh
 * config, as a user does in a terminal).
 */
function onLogin(sshConfig: string, command: string): string {
  return execFileSync(
    'ssh',
    ['-F', sshConfig, '-o', 'BatchMode=yes', 'hpc', command],
    { encoding: 'utf-8', timeout: 30000 }
  ).trim();
}

function jobState(sshConfig: string, job: string): string {
  return onLogin(sshConfig, `squeue -h -j ${job} -o %T || true`);
}

/**
 * The kernelspec every test adds: a 10 min job on the test cluster's login host.
 */
function slurmKernel(sshConfig: string, prefix: string): Record<string, unknown> {
  return {
    kernel_name: KERNEL,
    display_name: DISPLAY,
    language: 'python',
    ssh_host_alias: 'hpc',
    ssh_config: sshConfig,
    remote_python_prefix: prefix,
    remote_kernel_name: 'python3',
    channels: 'relay',
    slurm: { time: '10' }
  };
}

async function addSlurmKernel(
  page: IJupyterLabPageFixture,
  config: Record<string, unknown>
): Promise<number> {
  return page.evaluate(async config => {
    const { serverSettings } = (window as any).jupyterapp.serviceManager;
    const xsrf = /(?:^|;\s*)_xsrf=([^;]*)/.exec(document.cookie)?.[1];
    const response = await fetch(`${serverSettings.baseUrl}sshpyk/kernelspecs`, {
      method: 'POST',
      credentials: 'same-origin',
      headers: {
        'Content-Type': 'application/json',
        ...(xsrf ? { 'X-XSRFToken': decodeURIComponent(xsrf) } : {})
      },
      body: JSON.stringify(config)
    });
    await (window as any).jupyterapp.serviceManager.kernelspecs.refreshSpecs();
    return response.status;
  }, config);
}

test.describe('a Slurm kernel in the queue', () => {
  let sshConfig: string;
  let blocker: string | null = null;

  test.beforeAll(() => {
    test.setTimeout(120000);
    sshConfig = testHosts().sshConfig;
    harnessSlurm('up', sshConfig);
  });

  test.afterAll(() => {
    harnessSlurm('down', sshConfig);
  });

  test.afterEach(async ({ page }) => {
    if (blocker) {
      onLogin(sshConfig, `scancel ${blocker}`);
      blocker = null;
    }
    await page
      .evaluate(() =>
        (window as any).jupyterapp.serviceManager.sessions.shutdownAll()
      )
      .catch(() => undefined);
    await deleteKernelQuietly(page, KERNEL);
  });

  /**
   * A Slurm kernelspec, the node taken by a blocker job, and a notebook whose
   * kernel's job now waits: the status bar item, the sidebar card and the
   * job id once the status bar says "queued".
   */
  async function queuedNotebook(page: IJupyterLabPageFixture) {
    const { prefix } = testHosts();
    expect(
      await addSlurmKernel(page, slurmKernel(sshConfig, prefix))
    ).toBe(201);

    // the node is busy: the kernel's job waits with reason Resources
    blocker = onLogin(
      sshConfig,
      "sbatch --parsable --exclusive -N1 -J spk-blocker -o /dev/null --wrap 'sleep 600'"
    );
    await expect
      .poll(() => jobState(sshConfig, blocker!), { timeout: 30000 })
      .toBe('RUNNING');

    await page.evaluate(async kernelName => {
      await (window as any).jupyterapp.commands.execute('notebook:create-new', {
        kernelName
      });
    }, KERNEL);
    await page.waitForSelector('.jp-NotebookPanel');

    const item = page.getByTestId('sshpyk-status-item');
    await expect(item).toHaveText(/^hpc: queued: Resources/, {
      timeout: 60000
    });
    const title = (await item.getAttribute('title')) ?? '';
    const job = /Slurm job (\d+)/.exec(title)?.[1] ?? '';
    expect(job, title).not.toBe('');
    expect(jobState(sshConfig, job)).toBe('PENDING');

    const panel = await openSidebar(page);
    const card = panel.getByTestId(`sshpyk-kernel-${KERNEL}`);
    await expect(card.getByTestId('sshpyk-running')).toContainText(
      'queued: Resources'
    );
    await expect(card.getByTestId('sshpyk-slurm-detail')).toHaveText(
      new RegExp(`^Slurm job ${job}, queued`)
    );
    return { item, card, job };
  }

  /**
   * The job was cancelled, and Lab shows nothing queued any more.
   */
  async function expectCancelled(
    job: string,
    item: Locator,
    card: Locator
  ): Promise<void> {
    await expect
      .poll(() => jobState(sshConfig, job), { timeout: 30000 })
      .not.toBe('PENDING');
    expect(
      onLogin(
        sshConfig,
        `scontrol show job -o ${job} | grep -o 'JobState=[A-Z_]*'`
      )
    ).toBe('JobState=CANCELLED');
    await expect(card.getByTestId('sshpyk-slurm-cancel')).toHaveCount(0, {
      timeout: 20000
    });
    await expect(item.filter({ hasText: 'queued' })).toHaveCount(0);
  }

  test('the status bar shows the queue; a click asks, then cancels the job', async ({
    page
  }) => {
    test.setTimeout(150000);
    const { item, card, job } = await queuedNotebook(page);
    await expect(item).toHaveAttribute('data-cancellable', 'true');
    await expect(card.getByTestId('sshpyk-slurm-cancel')).toBeVisible();
    await page.locator('#jp-main-statusbar').screenshot({
      path: 'screenshots/sshpyk-slurm-queued-statusbar.png'
    });
    await card.screenshot({ path: 'screenshots/sshpyk-slurm-queued-card.png' });

    await item.click();
    const dialog = page.locator('.jp-Dialog');
    await expect(dialog.locator('.jp-Dialog-header')).toHaveText(
      new RegExp(`^Cancel Slurm job ${job} \\(queued: Resources`)
    );
    await dialog.getByRole('button', { name: 'Cancel Job' }).click();
    await expectCancelled(job, item, card);
  });

  test("the sidebar's Cancel button cancels the queued job", async ({
    page
  }) => {
    test.setTimeout(150000);
    const { item, card, job } = await queuedNotebook(page);
    await card.getByTestId('sshpyk-slurm-cancel').click();
    await expectCancelled(job, item, card);
  });

  test('running: the node, one time-limit warning per job (none after a reload), and why the job ended', async ({
    page
  }) => {
    test.setTimeout(150000);
    const { prefix } = testHosts();
    // a 10 min job warned 10 min before its end (the default): at once
    expect(
      await addSlurmKernel(page, slurmKernel(sshConfig, prefix))
    ).toBe(201);
    await page.evaluate(async kernelName => {
      await (window as any).jupyterapp.commands.execute('notebook:create-new', {
        kernelName
      });
    }, KERNEL);
    await page.waitForSelector('.jp-NotebookPanel');
    await page.notebook.setCell(0, 'code', 'import socket; socket.gethostname()');
    await page.notebook.runCell(0);
    expect(await page.notebook.getCellTextOutput(0)).toEqual(["'node1'"]);

    const item = page.getByTestId('sshpyk-status-item');
    await expect(item).toHaveText('hpc: connected on node1', {
      timeout: 20000
    });
    const title = (await item.getAttribute('title')) ?? '';
    const job = /Slurm job (\d+) on node1, \d+ min left/.exec(title)?.[1] ?? '';
    expect(job, title).not.toBe('');
    const warning = page.getByText(
      new RegExp(
        `^Slurm job ${job} \\(kernel ${DISPLAY}\\) ends in \\d+ min \\(its time limit\\): save your work\\.$`
      )
    );
    await expect(warning).toHaveCount(1, { timeout: 10000 });
    await page.screenshot({ path: 'screenshots/sshpyk-slurm-warning.png' });

    // a reload: the same job is not warned of again
    // (the notebook comes back from the layout, not the launcher)
    await page.reload({ waitForIsReady: false });
    await page.waitForSelector('.jp-NotebookPanel');
    await expect(item).toHaveText('hpc: connected on node1', {
      timeout: 20000
    });
    await page.waitForTimeout(5000);
    await expect(warning).toHaveCount(0);

    // the job ends under the kernel (an admin's scancel): Lab says why
    onLogin(sshConfig, `scancel ${job}`);
    await expect(item).toHaveText(new RegExp(`^hpc: Slurm job ${job} ended: CANCELLED`), {
      timeout: 30000
    });
    // the notification (Lab's toasts are alerts), once the kernel stayed listed
    await expect(
      page
        .getByRole('alert')
        .filter({ hasText: new RegExp(`^Slurm job ${job} ended: CANCELLED`) })
    ).toHaveCount(1, { timeout: 20000 });
    await page.screenshot({ path: 'screenshots/sshpyk-slurm-ended.png' });
  });
});
