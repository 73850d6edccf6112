/**
 * The login dialog and the login watcher, against a fake of the server's
 * login routes (the fetch of the server settings): what the front end does
 * with what the server says, not the server.
 */
import { Dialog, Notification } from '@jupyterlab/apputils';
import { JupyterFrontEnd } from '@jupyterlab/application';
import { ServerConnection } from '@jupyterlab/services';
import { CommandRegistry } from '@lumino/commands';

import { ILogin, ILoginPrompt } from '../login/api';
import { LoginPromptBody } from '../login/dialog';
import { LOGIN_COMMAND, loginPlugin } from '../login/plugin';
import { LoginWatcher } from '../login/watcher';

const HOST_KEY =
  "The authenticity of host 'otp (10.200.2.2)' can't be established.\n" +
  'ED25519 key fingerprint is SHA256:3u/3C0r9kXwZ+q1lT9yq7j5pE2aN0hYV5qk0dQ8vJjM.\n' +
  'This key is not known by any other names.\n' +
  'Are you sure you want to continue connecting (yes/no/[fingerprint])? ';

/**
 * The login routes as the server answers them, with what was posted.
 */
class FakeServer {
  logins: ILogin[] = [];
  posts: { path: string; body: any }[] = [];
  gets = 0;
  down = false;
  /**
   * How long a GET takes, in ms.
   */
  delay = 0;
  inFlight = 0;
  maxInFlight = 0;

  readonly settings = ServerConnection.makeSettings({
    baseUrl: 'http://localhost:8888/',
    fetch: (async (request: Request) => this._handle(request)) as any
  });

  private async _handle(request: Request): Promise<Response> {
    const path = new URL(request.url).pathname;
    if (this.down) {
      throw new TypeError('Failed to fetch');
    }
    if (request.method === 'GET' && path === '/sshpyk/logins') {
      this.gets++;
      this.inFlight++;
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
      await new Promise(resolve => setTimeout(resolve, this.delay));
      this.inFlight--;
      return new Response(JSON.stringify({ logins: this.logins }));
    }
    const text = await request.text();
    this.posts.push({ path, body: text ? JSON.parse(text) : null });
    if (path === '/sshpyk/logins') {
      return new Response(JSON.stringify(login('connecting')), {
        status: 202
      });
    }
    return new Response(null, { status: 204 });
  }
}

function login(
  state: ILogin['state'],
  prompt: ILoginPrompt | null = null,
  more: Partial<ILogin> = {}
): ILogin {
  return {
    id: 'l1',
    alias: 'otp',
    ssh_config: null,
    state,
    prompt,
    error: null,
    ...more
  };
}

const OTP: ILoginPrompt = {
  id: 'p1',
  text: "One-time password (OATH) for `sshpyktest': ",
  echo: false
};

/**
 * Resolve once `condition()` holds (a dialog opens and closes across a few
 * turns of the event loop), or fail saying what was awaited.
 */
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (condition()) {
      return;
    }
    await new Promise(resolve => setTimeout(resolve, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function dialogs(): HTMLElement[] {
  return Array.from(
    document.querySelectorAll<HTMLElement>(
      '[data-testid="sshpyk-login-dialog"]'
    )
  );
}

function notes(): { type: string; message: string }[] {
  return Notification.manager.notifications.map(n => ({
    type: n.type,
    message: n.message
  }));
}

describe('LoginPromptBody', () => {
  it('shows the prompt verbatim, as text, and masks a hidden answer', () => {
    const text = `${HOST_KEY}<b>not markup</b>  two spaces\n`;
    const body = new LoginPromptBody({ id: 'p', text, echo: false });
    const pre = body.node.querySelector('pre')!;
    expect(pre.textContent).toBe(text);
    expect(pre.querySelector('b')).toBeNull();
    const input = body.node.querySelector('input')!;
    expect(input.type).toBe('password');
    // the prompt labels the input
    expect(input.getAttribute('aria-labelledby')).toBe(pre.id);
    input.value = '123456';
    expect(body.getValue()).toBe('123456');
    expect(body.node.textContent).not.toContain('not accepted');
  });

  it('shows an answer that may be shown, and says when the host asks again', () => {
    const body = new LoginPromptBody(
      { id: 'p', text: HOST_KEY, echo: true },
      { retry: true }
    );
    expect(body.node.querySelector('input')!.type).toBe('text');
    expect(body.node.querySelector('[role="alert"]')?.textContent).toContain(
      'not accepted'
    );
  });
});

describe('LoginWatcher', () => {
  let server: FakeServer;
  let watcher: LoginWatcher;

  beforeEach(() => {
    server = new FakeServer();
    watcher = new LoginWatcher({
      serverSettings: server.settings,
      poll: false,
      // long enough that the tests' refreshes are the only polls
      idleInterval: 60000,
      activeInterval: 30000
    });
  });

  afterEach(async () => {
    watcher.dispose();
    Dialog.flush();
    Notification.manager.dismiss();
    await until(() => dialogs().length === 0, 'the dialogs to go');
  });

  it('opens one dialog per prompt, and closes it when the prompt goes away', async () => {
    server.logins = [login('prompting', OTP)];
    await watcher.refresh();
    await until(() => dialogs().length === 1, 'the dialog');
    const dialog = dialogs()[0];
    // the header is a React widget: it renders a turn later
    await until(
      () =>
        dialog.querySelector('.jp-Dialog-header')?.textContent ===
        'Log in to otp',
      'the title'
    );
    expect(dialog.querySelector('pre')?.textContent).toBe(OTP.text);
    // the answer field has the focus
    expect(document.activeElement).toBe(dialog.querySelector('input'));
    expect(watcher.interval).toBe(30000);

    // polled again with the same prompt: still one dialog
    await watcher.refresh();
    await watcher.refresh();
    expect(dialogs()).toHaveLength(1);

    // answered in a terminal: the dialog closes, nothing is sent
    server.logins = [login('connecting')];
    await watcher.refresh();
    await until(() => dialogs().length === 0, 'the dialog to close');
    expect(server.posts).toEqual([]);

    // the same prompt id never opens twice, a new one does
    server.logins = [login('prompting', OTP)];
    await watcher.refresh();
    expect(dialogs()).toHaveLength(0);
    server.logins = [login('prompting', { ...OTP, id: 'p2' })];
    await watcher.refresh();
    await until(() => dialogs().length === 1, 'the second dialog');
    server.logins = [];
    await watcher.refresh();
    await until(() => dialogs().length === 0, 'the second dialog to close');
    expect(server.posts).toEqual([]);
  });

  it('shows the prompts of two hosts one after the other', async () => {
    const other = login('prompting', { ...OTP, id: 'q1' }, { id: 'l2' });
    server.logins = [login('prompting', OTP), other];
    await watcher.refresh();
    await until(() => dialogs().length === 1, 'the first dialog');
    // the second waits behind the first; its prompt goes away meanwhile
    server.logins = [login('prompting', OTP)];
    await watcher.refresh();
    expect(dialogs()).toHaveLength(1);
    server.logins = [];
    await watcher.refresh();
    await until(() => dialogs().length === 0, 'the first dialog to close');
    await new Promise(resolve => setTimeout(resolve, 20));
    expect(dialogs()).toHaveLength(0);
    expect(server.posts).toEqual([]);
  });

  it('sends the answer on Enter, and says when the host asks again', async () => {
    server.logins = [login('prompting', OTP)];
    await watcher.refresh();
    await until(() => dialogs().length === 1, 'the dialog');
    const input = dialogs()[0].querySelector('input')!;
    input.value = '123456';
    input.dispatchEvent(
      new KeyboardEvent('keydown', { key: 'Enter', bubbles: true })
    );
    await until(() => server.posts.length === 1, 'the answer');
    expect(server.posts).toEqual([
      {
        path: '/sshpyk/logins/l1/answer',
        body: { prompt_id: 'p1', answer: '123456' }
      }
    ]);
    await until(() => dialogs().length === 0, 'the dialog to close');

    // the same question again: the code was refused
    server.logins = [login('prompting', { ...OTP, id: 'p2' })];
    await watcher.refresh();
    await until(() => dialogs().length === 1, 'the second dialog');
    expect(dialogs()[0].querySelector('[role="alert"]')).not.toBeNull();
  });

  it('cancels the login on Escape, and keeps quiet about its failure', async () => {
    server.logins = [
      login('prompting', { ...OTP, text: HOST_KEY, echo: true })
    ];
    await watcher.refresh();
    await until(() => dialogs().length === 1, 'the dialog');
    expect(dialogs()[0].querySelector('input')!.type).toBe('text');
    dialogs()[0]
      .querySelector('input')!
      .dispatchEvent(
        new KeyboardEvent('keydown', { key: 'Escape', bubbles: true })
      );
    await until(() => server.posts.length === 1, 'the cancel');
    expect(server.posts[0].path).toBe('/sshpyk/logins/l1/cancel');
    server.logins = [login('failed', null, { error: 'cancelled' })];
    await watcher.refresh();
    expect(notes()).toEqual([]);
  });

  it('says once how a login ended, but not what ended before it loaded', async () => {
    server.logins = [
      login('failed', null, { id: 'old', error: 'long ago' }),
      login('connecting')
    ];
    await watcher.refresh();
    expect(notes()).toEqual([]);
    expect(watcher.interval).toBe(30000);

    server.logins[1] = login('failed', null, {
      error: 'Permission denied (keyboard-interactive).'
    });
    await watcher.refresh();
    await watcher.refresh();
    expect(notes()).toEqual([
      {
        type: 'error',
        message:
          'Login to otp failed: Permission denied (keyboard-interactive).'
      }
    ]);
    expect(watcher.interval).toBe(60000);

    server.logins.push(login('connected', null, { id: 'l2' }));
    await watcher.refresh();
    await watcher.refresh();
    expect(notes().map(n => n.type)).toEqual(['success', 'error']);
    expect(notes()[0].message).toBe('Logged in to otp.');
    expect(watcher.loginFor('otp')?.id).toBe('l2');
  });

  it('a login started here is news even when first seen ended', async () => {
    server.logins = [login('failed', null, { error: 'no such host' })];
    await expect(watcher.start('otp', '/c')).resolves.toMatchObject({
      id: 'l1'
    });
    await watcher.refresh();
    expect(server.posts).toEqual([
      { path: '/sshpyk/logins', body: { alias: 'otp', ssh_config: '/c' } }
    ]);
    expect(notes().map(n => n.message)).toEqual([
      'Login to otp failed: no such host'
    ]);
  });

  it('says once that the server cannot be reached, and backs off', async () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => {});
    const error = jest.spyOn(console, 'error').mockImplementation(() => {});
    server.down = true;
    for (let i = 0; i < 4; i++) {
      await watcher.refresh();
    }
    expect(watcher.error).toContain('Cannot reach the Jupyter server');
    expect(warn).toHaveBeenCalledTimes(1);
    expect(error).not.toHaveBeenCalled();
    expect(notes()).toEqual([]);
    server.down = false;
    await watcher.refresh();
    expect(watcher.error).toBeNull();
    warn.mockRestore();
    error.mockRestore();
  });

  it('never has two requests out at a time', async () => {
    // a refresh while the poll's own request is out
    server.delay = 30;
    const polling = new LoginWatcher({
      serverSettings: server.settings,
      idleInterval: 10,
      activeInterval: 10
    });
    for (let i = 0; i < 5; i++) {
      await until(() => server.inFlight === 1, 'a poll');
      void polling.refresh();
      await new Promise(resolve => setTimeout(resolve, 40));
    }
    polling.dispose();
    await until(() => server.inFlight === 0, 'the requests to end');
    expect(server.gets).toBeGreaterThanOrEqual(5);
    expect(server.maxInFlight).toBe(1);
  });
});

describe('LoginWatcher polling', () => {
  function setHidden(hidden: boolean): void {
    Object.defineProperty(document, 'visibilityState', {
      configurable: true,
      get: () => (hidden ? 'hidden' : 'visible')
    });
    document.dispatchEvent(new Event('visibilitychange'));
  }

  afterEach(() => setHidden(false));

  it('polls on its own, and stops while the page is hidden', async () => {
    const server = new FakeServer();
    const watcher = new LoginWatcher({
      serverSettings: server.settings,
      idleInterval: 10,
      activeInterval: 10
    });
    await until(() => server.gets >= 3, 'polls');
    setHidden(true);
    // one more poll may linger
    await new Promise(resolve => setTimeout(resolve, 50));
    const hiddenGets = server.gets;
    await new Promise(resolve => setTimeout(resolve, 100));
    expect(server.gets).toBe(hiddenGets);
    setHidden(false);
    await until(() => server.gets > hiddenGets, 'polls again once visible');
    watcher.dispose();
  });
});

describe('the logins plugin', () => {
  it('starts a login with its command', async () => {
    const server = new FakeServer();
    const commands = new CommandRegistry();
    const app = {
      commands,
      serviceManager: { serverSettings: server.settings }
    } as unknown as JupyterFrontEnd;
    const watcher = loginPlugin.activate(app, null) as LoginWatcher;
    expect(commands.label(LOGIN_COMMAND, {})).toBe('Log In to SSH Host…');
    expect(commands.isEnabled(LOGIN_COMMAND, {})).toBe(false);
    const started = await commands.execute(LOGIN_COMMAND, {
      alias: 'otp',
      ssh_config: '/home/u/.ssh/config'
    });
    expect(started).toMatchObject({ id: 'l1', alias: 'otp' });
    expect(server.posts).toEqual([
      {
        path: '/sshpyk/logins',
        body: { alias: 'otp', ssh_config: '/home/u/.ssh/config' }
      }
    ]);
    await expect(commands.execute(LOGIN_COMMAND, {})).rejects.toThrow(
      'needs a host alias'
    );
    watcher.dispose();
  });
});
