/**
 * "Adding a kernel takes a minute": the Add form's short path against the
 * real test hosts (host from the ssh config → Check connection → the host's
 * environments → Add), the error summary of a refused submit, and a kernel
 * added with a container. The short path and the error summary are
 * photographed for the documentation (`ui-tests/screenshots/add-short-path.png`,
 * `add-error-summary.png`, committed).
 */
import { execFileSync } from 'child_process';
import * as path from 'path';

import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import type { Locator } from '@playwright/test';

import {
  deleteKernelQuietly,
  fillTarget,
  getKernel,
  openSidebar,
  testHosts, fillKernel } from './utils';

/**
 * Set the ssh config under "Advanced" (the test hosts have their own), and
 * close "Advanced" again, as a user would after.
 */
async function useSshConfig(panel: Locator, sshConfig: string): Promise<void> {
  const advanced = panel.getByTestId('sshpyk-advanced');
  await panel.getByTestId('sshpyk-advanced-toggle').click();
  await expect(advanced).toHaveAttribute('open', '');
  await panel
    .getByRole('textbox', { name: 'SSH config file', exact: true })
    .fill(sshConfig);
  await panel.getByTestId('sshpyk-advanced-toggle').click();
  await expect(advanced).not.toHaveAttribute('open', '');
}

async function pickRemote(panel: Locator): Promise<void> {
  const hostSelect = panel.getByTestId('sshpyk-host-select');
  await expect(hostSelect.locator('option[value="remote"]')).toHaveCount(1, {
    timeout: 20000
  });
  await hostSelect.selectOption('remote');
}

/**
 * A picture of the form as the sidebar shows it now: the form alone, cut to
 * the part in view (with "Advanced" open it is several screens tall).
 */
async function formShot(
  page: IJupyterLabPageFixture,
  panel: Locator,
  file: string
): Promise<void> {
  const form = await panel.getByTestId('sshpyk-form').boundingBox();
  const view = await panel.boundingBox();
  if (!form || !view) {
    throw new Error('the form is not on the page');
  }
  const top = Math.max(form.y, view.y);
  const bottom = Math.min(form.y + form.height, view.y + view.height);
  await page.screenshot({
    path: `screenshots/${file}`,
    clip: { x: form.x, y: top, width: form.width, height: bottom - top }
  });
}

const REPO = path.resolve(__dirname, '..', '..');
const VENV_BIN = path.join(REPO, '.venv', 'bin');

/**
 * The harness instance of an ssh config (`/tmp/spk0/...`: prefix spk, 0).
 */
function instance(sshConfig: string): string[] {
  const match = /^(.*?)(\d+)$/.exec(path.basename(path.dirname(sshConfig)));
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
 * A shell command on the test host `remote`, as its user.
 */
function onRemote(sshConfig: string, command: string): string {
  return execFileSync(
    'ssh',
    ['-F', sshConfig, '-o', 'BatchMode=yes', 'remote', command],
    { encoding: 'utf-8', timeout: 30000 }
  );
}

test.describe('the short path', () => {
  let added: string | null = null;
  // venvs where discovery looks (~/.venvs/*), named for this instance (the
  // test user's home is shared): the test hosts' environment, with ipykernel,
  // and a bare one without
  let venv: string | null = null;
  let bare: string | null = null;

  test.beforeAll(() => {
    const { sshConfig, prefix } = testHosts();
    const name = `galata-${path.basename(path.dirname(sshConfig))}`;
    [venv, bare] = onRemote(
      sshConfig,
      `mkdir -p ~/.venvs && ln -sfn ${prefix} ~/.venvs/${name} && ` +
        `python3 -m venv --without-pip ~/.venvs/${name}-bare && ` +
        `echo ~/.venvs/${name} ~/.venvs/${name}-bare`
    )
      .trim()
      .split(' ');
  });

  test.afterAll(() => {
    if (venv && bare) {
      onRemote(testHosts().sshConfig, `rm -rf ${venv} ${bare}`);
    }
  });

  test.afterEach(async ({ page }) => {
    if (added) {
      await deleteKernelQuietly(page, added);
    }
  });

  test('host, check, environment, Add', async ({ page }) => {
    test.setTimeout(120000);
    const { sshConfig } = testHosts();
    const panel = await openSidebar(page);
    await panel.getByTestId('sshpyk-add').click();
    const advanced = panel.getByTestId('sshpyk-advanced');
    // every field but the host is out of the way
    await expect(advanced).not.toHaveAttribute('open', '');
    await expect(panel.getByTestId('sshpyk-host-select')).toBeFocused();
    await useSshConfig(panel, sshConfig);
    await pickRemote(panel);

    await panel.getByTestId('sshpyk-check-connection').click();
    const note = panel.getByTestId('sshpyk-connection-note');
    await expect(note).toHaveAttribute('data-phase', /done|failed/, {
      timeout: 60000
    });
    await expect(note).toHaveAttribute('data-phase', 'done');
    // the venv made above: listed, pickable
    const row = panel
      .getByTestId('sshpyk-env')
      .and(panel.locator(`[data-prefix="${venv}"]`));
    await expect(row).toHaveCount(1);
    await expect(row).toContainText('venv');
    await expect(row.getByRole('checkbox')).toBeEnabled();
    await row.getByRole('checkbox').check();
    // no ipykernel: listed, not pickable, with the pip line that fixes it
    const bareRow = panel
      .getByTestId('sshpyk-env')
      .and(panel.locator(`[data-prefix="${bare}"]`));
    await expect(bareRow.getByRole('checkbox')).toBeDisabled();
    await expect(bareRow.getByTestId('sshpyk-env-hint')).toContainText(
      `${bare}/bin/python -m pip install ipykernel`
    );
    await formShot(page, panel, 'add-short-path.png');

    await expect(panel.getByTestId('sshpyk-picked')).toHaveText(
      '1 environment chosen: one kernel each.'
    );
    await panel.getByTestId('sshpyk-form-submit').click();
    await expect(panel.getByTestId('sshpyk-form')).toHaveCount(0, {
      timeout: 30000
    });
    const card = panel.locator('.jp-sshpyk-Kernel.jp-mod-selected');
    await expect(card).toContainText(
      `Python (${path.basename(venv!)}) on remote`
    );
    added = (await card.getAttribute('data-testid'))!.replace(
      'sshpyk-kernel-',
      ''
    );
    expect(added).toMatch(/^ssh-remote-/);
    const saved = await getKernel(page, added);
    expect(saved.status).toBe(200);
    expect(saved.body.config).toMatchObject({
      ssh_host_alias: 'remote',
      remote_python_prefix: venv,
      ssh_config: sshConfig,
      remote_kernel_name: 'python3'
    });
  });

  test('a host that wants a login: the check asks in the login dialog', async ({
    page
  }) => {
    test.setTimeout(120000);
    const { sshConfig } = testHosts();
    const panel = await openSidebar(page);
    await panel.getByTestId('sshpyk-add').click();
    await useSshConfig(panel, sshConfig);
    const hostSelect = panel.getByTestId('sshpyk-host-select');
    await expect(hostSelect.locator('option[value="otp"]')).toHaveCount(1, {
      timeout: 20000
    });
    await hostSelect.selectOption('otp');
    try {
      await panel.getByTestId('sshpyk-check-connection').click();
      const note = panel.getByTestId('sshpyk-connection-note');
      await expect(note).toHaveAttribute('data-phase', 'login');
      const dialog = page.getByTestId('sshpyk-login-dialog');
      await expect(dialog).toBeVisible({ timeout: 30000 });
      const answer = dialog.getByTestId('sshpyk-login-answer');
      await answer.fill(otpCode(sshConfig));
      await answer.press('Enter');
      await expect(dialog).toHaveCount(0);
      await expect(note).toHaveAttribute('data-phase', 'done', {
        timeout: 60000
      });
      await expect(
        panel
          .getByTestId('sshpyk-env')
          .and(panel.locator(`[data-prefix="${venv}"]`))
      ).toHaveCount(1);
    } finally {
      // the login made otp's master: end it, as the login tests do
      execFileSync(
        path.join(VENV_BIN, 'sshpyk'),
        ['logout', '--ssh-config', sshConfig, 'otp'],
        { encoding: 'utf-8' }
      );
    }
  });
});

test('a refused Add: every error at its field, a summary, the focus on the first', async ({
  page
}) => {
  test.setTimeout(60000);
  const { sshConfig, prefix } = testHosts();
  const panel = await openSidebar(page);
  await panel.getByTestId('sshpyk-add').click();
  await useSshConfig(panel, sshConfig);
  await pickRemote(panel);

  // the form's own finds: no environment chosen, the fields it would fill empty
  await panel.getByTestId('sshpyk-form-submit').click();
  const summary = panel.getByTestId('sshpyk-form-summary');
  await expect(summary).toHaveText(
    '5 fields need attention: Remote Python prefix, Remote kernel, Display name, Kernel name, Language'
  );
  await expect(panel.getByTestId('sshpyk-advanced')).toHaveAttribute(
    'open',
    ''
  );
  await expect(
    panel.getByRole('textbox', { name: 'Remote Python prefix', exact: true })
  ).toBeFocused();

  // the server's: a kernel name (said in words) and a timeout it refuses
  await panel
    .getByRole('textbox', { name: 'Remote Python prefix', exact: true })
    .fill(prefix);
  await fillKernel(panel, 'Refused', 'Not A Name');
  await panel.locator('#root_launch_timeout').fill('0');
  await panel.getByTestId('sshpyk-form-submit').click();
  // the server names both at once
  await expect(summary).toHaveText(
    '2 fields need attention: Kernel name, Launch timeout (s)'
  );
  await expect(panel.getByTestId('sshpyk-error-launch_timeout')).toHaveText(
    '0 must be from 1 to 3600'
  );
  const error = panel.getByTestId('sshpyk-error-kernel_name');
  await expect(error).toHaveText(
    "'Not A Name' is not valid: use lowercase letters, digits, '.', '_' and '-' only (no spaces or capitals)"
  );
  await expect(error).not.toContainText('^');
  await expect(
    panel.getByRole('textbox', { name: 'Kernel name', exact: true })
  ).toBeFocused();
  await panel.screenshot({ path: 'screenshots/add-errors-field.png' });
  // the summary sits with the buttons
  const buttons = panel.locator('.jp-sshpyk-Form-buttons');
  await expect(buttons.getByTestId('sshpyk-form-summary')).toBeVisible();
  await buttons.getByTestId('sshpyk-form-submit').scrollIntoViewIfNeeded();
  await formShot(page, panel, 'add-error-summary.png');
});

test.describe('a kernel in a container', () => {
  let added: string | null = null;

  test.afterEach(async ({ page }) => {
    if (added) {
      await deleteKernelQuietly(page, added);
    }
  });

  test('the Container section: a refused image at its field, then the kernelspec holds it', async ({
    page
  }) => {
    test.setTimeout(60000);
    const { sshConfig, prefix } = testHosts();
    const name = `galata-container-${path.basename(path.dirname(sshConfig))}`;
    const panel = await openSidebar(page);
    await panel.getByTestId('sshpyk-add').click();
    await fillTarget(panel, sshConfig, prefix);
    await fillKernel(panel, 'In a container', name);

    const section = panel.getByTestId('sshpyk-container');
    // closed and off: opened by its title, turned on by its toggle
    await expect(section).not.toHaveAttribute('open', '');
    await section.locator('summary').click();
    await expect(section).toHaveAttribute('open', '');
    const toggle = panel.getByTestId('sshpyk-container-toggle');
    await expect(toggle).not.toBeChecked();
    await toggle.check();
    const runtime = section.getByRole('combobox', {
      name: 'Runtime',
      exact: true
    });
    // the schema's default
    await expect(runtime.locator('option:checked')).toHaveText('apptainer');
    await runtime.selectOption({ label: 'podman' });
    const image = section.getByRole('textbox', { name: 'Image', exact: true });
    await image.fill('-x');
    await panel.getByTestId('sshpyk-form-submit').click();
    await expect(panel.getByTestId('sshpyk-error-container_image')).toHaveText(
      "'-x' starts with '-' (the runtime would read an option)"
    );
    await expect(panel.getByTestId('sshpyk-form-summary')).toHaveText(
      '1 field needs attention: Container: Image'
    );
    await expect(image).toBeFocused();
    await formShot(page, panel, 'add-container-error.png');

    await image.fill('localhost/sshpyk-test:1');
    await panel.getByTestId('sshpyk-form-submit').click();
    await expect(panel.getByTestId('sshpyk-form')).toHaveCount(0, {
      timeout: 30000
    });
    added = name;
    const saved = await getKernel(page, name);
    expect(saved.status).toBe(200);
    expect(saved.body.config.container).toEqual({
      runtime: 'podman',
      image: 'localhost/sshpyk-test:1',
      python: 'python3',
      options: []
    });
  });
});
