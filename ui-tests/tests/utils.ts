import { expect, IJupyterLabPageFixture } from '@jupyterlab/galata';
import type { Locator } from '@playwright/test';

/**
 * The real test hosts (`./dev test` brings them up and exports these).
 */
export function testHosts(): { sshConfig: string; prefix: string } {
  const sshConfig = process.env.SSHPYK_TEST_SSH_CONFIG;
  const prefix = process.env.SSHPYK_TEST_REMOTE_PREFIX;
  if (!sshConfig || !prefix) {
    throw new Error(
      'SSHPYK_TEST_SSH_CONFIG and SSHPYK_TEST_REMOTE_PREFIX must name the test ' +
        "hosts' ssh config and remote Python prefix (`./dev test` sets them)."
    );
  }
  return { sshConfig, prefix };
}

export async function openSidebar(
  page: IJupyterLabPageFixture
): Promise<Locator> {
  await page.sidebar.openTab('sshpyk-sidebar');
  const panel = page.locator('#sshpyk-sidebar');
  await expect(
    panel.getByRole('heading', { name: 'SSH Kernels' })
  ).toBeVisible();
  return panel;
}

/**
 * Open the form's "Advanced" section (every field but the host), when closed.
 */
export async function openAdvanced(panel: Locator): Promise<void> {
  const advanced = panel.getByTestId('sshpyk-advanced');
  if ((await advanced.getAttribute('open')) === null) {
    await panel.getByTestId('sshpyk-advanced-toggle').click();
  }
  await expect(advanced).toHaveAttribute('open', '');
}

/**
 * Fill the form's connection part the way a user does: the ssh config path
 * (under "Advanced", left open), the host picked from its list, the prefix.
 */
export async function fillTarget(
  panel: Locator,
  sshConfig: string,
  prefix: string
): Promise<void> {
  await openAdvanced(panel);
  await panel
    .getByRole('textbox', { name: 'SSH config file', exact: true })
    .fill(sshConfig);
  const hostSelect = panel.getByTestId('sshpyk-host-select');
  await expect(hostSelect.locator('option[value="remote"]')).toHaveCount(1, {
    timeout: 20000
  });
  await hostSelect.selectOption('remote');
  await panel
    .getByRole('textbox', { name: 'Remote Python prefix', exact: true })
    .fill(prefix);
}

/**
 * Fill the kernel's own part: the remote kernel typed in (not picked from the
 * host's list), the display name, the kernel name and the language.
 */
export async function fillKernel(
  panel: Locator,
  displayName: string,
  kernelName: string
): Promise<void> {
  await panel.getByTestId('sshpyk-remote-kernel-select').selectOption({
    label: 'Another kernel (type its name)…'
  });
  await panel.getByTestId('sshpyk-remote-kernel-input').fill('python3');
  await panel
    .getByRole('textbox', { name: 'Display name', exact: true })
    .fill(displayName);
  await panel
    .getByRole('textbox', { name: 'Kernel name', exact: true })
    .fill(kernelName);
  await panel
    .getByRole('textbox', { name: 'Language', exact: true })
    .fill('python');
}

/**
 * `GET /sshpyk/kernelspecs/<name>` from the page, as the frontend calls it.
 */
export async function getKernel(
  page: IJupyterLabPageFixture,
  name: string
): Promise<{ status: number; body: any }> {
  return page.evaluate(async name => {
    const { serverSettings } = (window as any).jupyterapp.serviceManager;
    const response = await fetch(
      `${serverSettings.baseUrl}sshpyk/kernelspecs/${encodeURIComponent(name)}`,
      { credentials: 'same-origin' }
    );
    return { status: response.status, body: await response.json() };
  }, name);
}

/**
 * Remove a kernel the test added, whatever state the test ended in.
 */
export async function deleteKernelQuietly(
  page: IJupyterLabPageFixture,
  name: string
): Promise<void> {
  await page
    .evaluate(async name => {
      const { serverSettings } = (window as any).jupyterapp.serviceManager;
      const xsrf = /(?:^|;\s*)_xsrf=([^;]*)/.exec(document.cookie)?.[1];
      await fetch(
        `${serverSettings.baseUrl}sshpyk/kernelspecs/${encodeURIComponent(name)}`,
        {
          method: 'DELETE',
          credentials: 'same-origin',
          headers: xsrf ? { 'X-XSRFToken': decodeURIComponent(xsrf) } : {}
        }
      );
    }, name)
    .catch(() => undefined);
}
