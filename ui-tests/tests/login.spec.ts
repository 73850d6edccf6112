/**
 * Logging in from Lab to a host that wants a one-time code: the harness's
 * `otp` host (the key AND a TOTP code, keyboard-interactive through PAM's
 * pam_oath). The codes come from the harness (`python -m harness otp`, which
 * computes them with oathtool).
 */
import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import type { Locator } from '@playwright/test';
import { execFileSync } from 'child_process';
import * as path from 'path';

import { deleteKernelQuietly, testHosts } from './utils';

const REPO = path.resolve(__dirname, '..', '..');
const VENV_BIN = path.join(REPO, '.venv', 'bin');
const OTP_PROMPT =
  /^\(sshpyktest@10\.200\.\d+\.\d+\) One-time password \(OATH\) for `sshpyktest': $/;

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

/**
 * A one-time code the `otp` host takes now, and for 5 s more.
 */
function otpCode(sshConfig: string): string {
  return execFileSync(
    path.join(VENV_BIN, 'python'),
    ['-m', 'harness', 'otp', ...instance(sshConfig)],
    { cwd: path.join(REPO, 'tests'), encoding: 'utf-8' }
  ).trim();
}

/**
 * End the login (the host's master) the way a user does in a terminal.
 */
function logout(sshConfig: string): void {
  execFileSync(
    path.join(VENV_BIN, 'sshpyk'),
    ['logout', '--ssh-config', sshConfig, 'otp'],
    { encoding: 'utf-8' }
  );
}

async function startLogin(
  page: IJupyterLabPageFixture,
  sshConfig: string
): Promise<void> {
  await page.evaluate(
    sshConfig =>
      (window as any).jupyterapp.commands.execute('sshpyk:login', {
        alias: 'otp',
        ssh_config: sshConfig
      }),
    sshConfig
  );
}

/**
 * The server's newest login to `otp`, as `GET /sshpyk/logins` lists it.
 */
async function lastLogin(page: IJupyterLabPageFixture): Promise<any> {
  return page.evaluate(async () => {
    const { serverSettings } = (window as any).jupyterapp.serviceManager;
    const response = await fetch(`${serverSettings.baseUrl}sshpyk/logins`, {
      credentials: 'same-origin'
    });
    const { logins } = await response.json();
    return logins.filter((l: any) => l.alias === 'otp').pop() ?? null;
  });
}

/**
 * Add an SSH kernelspec on the `otp` host through the REST API, and let Lab
 * know of it.
 */
async function addOtpKernel(
  page: IJupyterLabPageFixture,
  name: string
): Promise<void> {
  const { sshConfig, prefix } = testHosts();
  const status = await page.evaluate(
    async ([name, sshConfig, prefix]) => {
      const app = (window as any).jupyterapp;
      const { serverSettings } = app.serviceManager;
      const xsrf = /(?:^|;\s*)_xsrf=([^;]*)/.exec(document.cookie)?.[1];
      const response = await fetch(
        `${serverSettings.baseUrl}sshpyk/kernelspecs`,
        {
          method: 'POST',
          credentials: 'same-origin',
          headers: xsrf ? { 'X-XSRFToken': decodeURIComponent(xsrf) } : {},
          body: JSON.stringify({
            kernel_name: name,
            display_name: 'Galata otp',
            language: 'python',
            ssh_host_alias: 'otp',
            ssh_config: sshConfig,
            remote_python_prefix: prefix,
            remote_kernel_name: 'python3'
          })
        }
      );
      await app.serviceManager.kernelspecs.refreshSpecs();
      return response.status;
    },
    [name, sshConfig, prefix]
  );
  expect(status).toBe(201);
}

/**
 * Start a login to `otp` as the command does, and wait for its dialog.
 */
async function openLoginDialog(
  page: IJupyterLabPageFixture,
  sshConfig: string
): Promise<Locator> {
  await startLogin(page, sshConfig);
  const dialog = page.getByTestId('sshpyk-login-dialog');
  await expect(dialog).toBeVisible({ timeout: 30000 });
  return dialog;
}

/**
 * The dialog shows ssh's one-time-code question verbatim (trailing space included).
 */
async function expectOtpQuestion(dialog: Locator): Promise<void> {
  const text = await dialog
    .getByTestId('sshpyk-login-prompt')
    .evaluate(node => node.textContent);
  expect(text).toMatch(OTP_PROMPT);
}

/**
 * Type a fresh one-time code in the dialog and press Enter.
 */
async function answerWithCode(dialog: Locator, sshConfig: string): Promise<void> {
  const answer = dialog.getByTestId('sshpyk-login-answer');
  await answer.fill(otpCode(sshConfig));
  await answer.press('Enter');
}

function toasts(page: IJupyterLabPageFixture, text: string) {
  return page.locator('.jp-toastContainer').getByText(text);
}

test.describe('a login to a host that wants a one-time code', () => {
  test.afterEach(() => {
    logout(testHosts().sshConfig);
  });

  test('the dialog shows what ssh asks, and the code logs in', async ({
    page
  }) => {
    test.setTimeout(90000);
    const { sshConfig } = testHosts();
    const dialog = await openLoginDialog(page, sshConfig);
    await expect(dialog.locator('.jp-Dialog-header')).toHaveText(
      'Log in to otp'
    );
    await expectOtpQuestion(dialog);
    const answer = dialog.getByTestId('sshpyk-login-answer');
    await expect(answer).toBeFocused();
    await expect(answer).toHaveAttribute('type', 'password');
    await dialog.screenshot({ path: 'screenshots/sshpyk-login-dialog.png' });

    await answer.fill(otpCode(sshConfig));
    await answer.press('Enter');
    await expect(dialog).toHaveCount(0);
    await expect(toasts(page, 'Logged in to otp.')).toBeVisible({
      timeout: 30000
    });
    expect(await lastLogin(page)).toMatchObject({
      state: 'connected',
      prompt: null
    });
  });

  test('a wrong code is asked again, the right one logs in', async ({
    page
  }) => {
    test.setTimeout(90000);
    const { sshConfig } = testHosts();
    const dialog = await openLoginDialog(page, sshConfig);
    await expect(dialog.getByRole('alert')).toHaveCount(0);
    // every digit changed: not the code of this or any step near it
    const wrong = otpCode(sshConfig).replace(/\d/g, d =>
      String((Number(d) + 5) % 10)
    );
    await dialog.getByTestId('sshpyk-login-answer').fill(wrong);
    await dialog.getByRole('button', { name: 'Send' }).click();

    // ssh's retry: the same question, in a new dialog that says so
    await expect(dialog.getByRole('alert')).toContainText('not accepted', {
      timeout: 30000
    });
    await expectOtpQuestion(dialog);
    await answerWithCode(dialog, sshConfig);
    await expect(toasts(page, 'Logged in to otp.')).toBeVisible({
      timeout: 30000
    });
    expect((await lastLogin(page)).state).toBe('connected');
  });

  test('Cancel gives the login up, without an error', async ({ page }) => {
    test.setTimeout(60000);
    const { sshConfig } = testHosts();
    const dialog = await openLoginDialog(page, sshConfig);
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await expect(dialog).toHaveCount(0);
    await expect
      .poll(async () => (await lastLogin(page)).state, { timeout: 30000 })
      .toBe('failed');
    // the user gave it up: no error to read, and no dialog again
    await page.waitForTimeout(2000);
    await expect(toasts(page, 'Login to otp failed')).toHaveCount(0);
    await expect(dialog).toHaveCount(0);
  });
});

test('a kernel launched on that host opens the login dialog itself, and asks again when the login ends', async ({
  page
}) => {
  test.setTimeout(240000);
  const { sshConfig } = testHosts();
  const kernel = 'galata-otp';
  try {
    await addOtpKernel(page, kernel);
    await page.notebook.createNew('otp.ipynb', { kernel });

    const dialog = page.getByTestId('sshpyk-login-dialog');
    await expect(dialog).toBeVisible({ timeout: 30000 });
    await expectOtpQuestion(dialog);
    await answerWithCode(dialog, sshConfig);
    await expect(dialog).toHaveCount(0);

    // the kernel runs on the host the login opened
    await page.notebook.setCell(
      0,
      'code',
      'import socket; socket.gethostname()'
    );
    await page.notebook.runCell(0);
    expect(await page.notebook.getCellTextOutput(0)).toEqual(["'remote'"]);
    await expect(dialog).toHaveCount(0);

    // the login ends (a laptop's sleep, a logout): the kernel lives on, the status bar
    // says "login needed", and one click on it logs in again
    logout(sshConfig);
    const item = page.getByTestId('sshpyk-status-item');
    await expect(item).toHaveAttribute('data-state', 'login_needed', {
      timeout: 30000
    });
    await expect(item).toContainText('otp: login needed');
    await item.click();
    await expect(dialog).toBeVisible({ timeout: 30000 });
    await answerWithCode(dialog, sshConfig);
    await expect(item).toHaveAttribute('data-state', 'connected', {
      timeout: 60000
    });
    // the same kernel: what the first cell defined is still there
    await page.notebook.setCell(0, 'code', 'socket.gethostname()');
    await page.notebook.runCell(0);
    expect(await page.notebook.getCellTextOutput(0)).toEqual(["'remote'"]);
  } finally {
    await page.evaluate(() =>
      (window as any).jupyterapp.serviceManager.sessions.shutdownAll()
    );
    await deleteKernelQuietly(page, kernel);
    logout(sshConfig);
  }
});
