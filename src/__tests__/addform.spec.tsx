/**
 * The Add form's short path, "Advanced" and the error summary, rendered from
 * the real kernel schema with the real model over a fake fetch (the server's
 * routes answered here): host picked from the ssh config's hosts → "Check
 * connection" (a login through the login flow) → the host's environments →
 * one kernelspec per chosen environment; every other field under
 * "Advanced"; a refused submit's errors at their fields, summarized beside
 * the submit button, with the focus on the first.
 */
import * as fs from 'fs';
import * as path from 'path';

import { ServerConnection } from '@jupyterlab/services';
import { nullTranslator } from '@jupyterlab/translation';
import { Signal } from '@lumino/signaling';
import * as React from 'react';
import { act } from 'react';
import { createRoot, Root } from 'react-dom/client';

import { requestAPI, SshpykResponseError } from '../api';
import {
  ENVIRONMENTS_ROUTE,
  environmentBodies,
  IEnvironment,
  shellWord,
  uniqueKernelName
} from '../environments';
import {
  errorSchemaOf,
  fieldLabel,
  inWords,
  summaryWords
} from '../formerrors';
import { ILogin } from '../login/api';
import { SshpykModel } from '../model';
import { KernelForm } from '../sidebar/form';
import { hasAdvancedValues } from '../sidebar/layout';

import { KERNEL_SCHEMA } from './kernelschema';
import { until } from './until';

(globalThis as any).IS_REACT_ACT_ENVIRONMENT = true;

const SCHEMA = KERNEL_SCHEMA;
const trans = nullTranslator.load('sshpyk');

function env(over: Partial<IEnvironment>): IEnvironment {
  return {
    prefix: '/opt/conda',
    kind: 'conda',
    name: 'base',
    python: '3.12.1',
    ipykernel: true,
    jupyter_client: true,
    module: null,
    error: null,
    ...over
  };
}

const ENVS = [
  env({}),
  env({
    prefix: '/home/u/proj/.venv',
    kind: 'venv',
    name: 'proj',
    python: '3.11.2'
  }),
  env({
    prefix: '/opt/bare',
    kind: 'venv',
    name: 'bare',
    python: '3.9.2',
    ipykernel: false,
    jupyter_client: false
  })
];

interface IServer {
  requests: { method: string; url: URL; body: any }[];
  model: SshpykModel;
  /** what POST /sshpyk/kernelspecs answers, by call */
  onAdd: (body: any, call: number) => Response;
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status });
}

/**
 * The real model over a fake fetch that answers the routes the form calls.
 */
function fakeServer(existing: string[] = []): IServer {
  const server: IServer = {
    requests: [],
    model: null as any,
    onAdd: body => json({ name: body.kernel_name, ssh: true })
  };
  let adds = 0;
  const serverSettings = ServerConnection.makeSettings({
    baseUrl: 'http://localhost:8888/',
    fetch: (async (request: Request) => {
      const url = new URL(request.url);
      const text = await request.text();
      const body = text ? JSON.parse(text) : null;
      server.requests.push({ method: request.method, url, body });
      const route = `${request.method} ${url.pathname}`;
      switch (route) {
        case 'GET /sshpyk/openapi.json':
          return json({ components: { schemas: { SSHKernel: SCHEMA } } });
        case 'GET /sshpyk/hosts':
          return json({
            ssh_config: '/home/u/.ssh/config',
            hosts: [{ alias: 'remote', hostname: '10.200.7.2', port: 22 }]
          });
        case 'POST /sshpyk/hosts/remote/environments':
          return json({ environments: ENVS, errors: [] });
        case 'POST /sshpyk/kernelspecs':
          return server.onAdd(body, adds++);
        case 'GET /sshpyk/kernelspecs':
          return json({
            kernels: existing.map(name => ({ name, ssh: true }))
          });
      }
      return json({ message: `no route ${route}` }, 404);
    }) as any
  });
  server.model = new SshpykModel({ serverSettings, poll: false });
  return server;
}

/**
 * The login flow as the form sees it: a login that asks (the dialog is the
 * watcher's business), then ends as `outcome` says when `finish` is called.
 */
function fakeLogins(outcome: 'connected' | 'failed') {
  const logins = {
    logins: [] as ILogin[],
    changed: new Signal<any, void>({}),
    start: jest.fn(async (alias: string, sshConfig?: string | null) => {
      const login: ILogin = {
        id: 'l1',
        alias,
        ssh_config: sshConfig ?? null,
        state: 'prompting',
        prompt: { id: 'p1', text: 'Password:', echo: false },
        error: null
      };
      logins.logins = [login];
      return login;
    }),
    finish: () => {
      logins.logins = logins.logins.map(l => ({
        ...l,
        state: outcome,
        prompt: null,
        error: outcome === 'failed' ? 'Permission denied (password)' : null
      }));
      logins.changed.emit();
    }
  };
  return logins;
}

let host: HTMLDivElement;
let root: Root;

beforeEach(() => {
  host = document.createElement('div');
  document.body.appendChild(host);
  root = createRoot(host);
});

afterEach(async () => {
  await act(async () => root.unmount());
  host.remove();
});

function q(testId: string): HTMLElement | null {
  return host.querySelector(`[data-testid="${testId}"]`);
}

function all(testId: string): HTMLElement[] {
  return Array.from(host.querySelectorAll(`[data-testid="${testId}"]`));
}

async function renderForm(
  model: any,
  options: { mode?: 'add' | 'edit'; initial?: any; logins?: any } = {}
): Promise<{ onDone: jest.Mock }> {
  const onDone = jest.fn();
  await act(async () =>
    root.render(
      <KernelForm
        model={model}
        mode={options.mode ?? 'add'}
        initial={options.initial}
        onDone={onDone}
        onCancel={() => undefined}
        trans={trans}
        logins={options.logins}
      />
    )
  );
  await until(() => !!q('sshpyk-advanced'), 'the form');
  return { onDone };
}

async function pickHost(alias: string): Promise<void> {
  const select = q('sshpyk-host-select') as HTMLSelectElement;
  await until(
    () => !!select.querySelector(`option[value="${alias}"]`),
    'the hosts'
  );
  await act(async () => {
    select.value = alias;
    select.dispatchEvent(new Event('change', { bubbles: true }));
  });
}

async function type(id: string, value: string): Promise<void> {
  const el = host.querySelector<HTMLInputElement>(`#${id}`)!;
  const setter = Object.getOwnPropertyDescriptor(
    HTMLInputElement.prototype,
    'value'
  )!.set!;
  await act(async () => {
    setter.call(el, value);
    el.dispatchEvent(new Event('input', { bubbles: true }));
  });
}

async function click(el: HTMLElement | null): Promise<void> {
  if (!el) {
    throw new Error('nothing to click');
  }
  await act(async () => el.click());
}

function envRow(prefix: string): HTMLElement {
  const row = all('sshpyk-env').find(r => r.dataset.prefix === prefix);
  if (!row) {
    throw new Error(`no environment ${prefix}`);
  }
  return row;
}

function checkbox(prefix: string): HTMLInputElement {
  return envRow(prefix).querySelector('input[type="checkbox"]')!;
}

function advanced(): HTMLDetailsElement {
  return q('sshpyk-advanced') as HTMLDetailsElement;
}

describe('the short path of the Add form', () => {
  it('checks the connection through a login, lists the environments and adds one kernel per chosen one', async () => {
    const server = fakeServer(['ssh-remote-base']);
    await server.model.refreshKernelspecs();
    const logins = fakeLogins('connected');
    const { onDone } = await renderForm(server.model, { logins });

    // the host first, then the check; every other field is out of the way
    expect(advanced().open).toBe(false);
    expect(advanced().contains(host.querySelector('#root_kernel_name'))).toBe(
      true
    );
    expect(advanced().contains(q('sshpyk-host-select'))).toBe(false);
    const check = q('sshpyk-check-connection') as HTMLButtonElement;
    expect(check.disabled).toBe(true);
    await pickHost('remote');
    expect(check.disabled).toBe(false);

    await click(check);
    expect(logins.start).toHaveBeenCalledWith('remote', null);
    expect(q('sshpyk-connection-note')!.dataset.phase).toBe('login');
    // nothing is discovered while the login waits for its answer
    expect(
      server.requests.some(r => r.url.pathname.endsWith('/environments'))
    ).toBe(false);
    await act(async () => logins.finish());
    await until(() => all('sshpyk-env').length === 3, 'the environments');
    expect(q('sshpyk-connection-note')!.textContent).toBe(
      'Connected. 3 Python environments on remote:'
    );

    // without ipykernel: listed, not pickable, with the command that fixes it
    expect(checkbox('/opt/bare').disabled).toBe(true);
    expect(envRow('/opt/bare').textContent).toContain(
      '/opt/bare/bin/python -m pip install ipykernel'
    );
    expect(checkbox('/opt/conda').disabled).toBe(false);

    await click(checkbox('/opt/conda'));
    await click(checkbox('/home/u/proj/.venv'));
    const submit = q('sshpyk-form-submit')!;
    expect(submit.textContent).toBe('Add 2 kernels');
    await click(submit);
    await until(() => onDone.mock.calls.length === 1, 'the adds');

    const adds = server.requests.filter(
      r => r.method === 'POST' && r.url.pathname === '/sshpyk/kernelspecs'
    );
    expect(adds).toHaveLength(2);
    expect(adds[0].body).toMatchObject({
      ssh_host_alias: 'remote',
      remote_python_prefix: '/opt/conda',
      remote_kernel_name: 'python3',
      language: 'python',
      display_name: 'Python (base) on remote',
      // ssh-remote-base exists already
      kernel_name: 'ssh-remote-base-2'
    });
    expect(adds[1].body).toMatchObject({
      ssh_host_alias: 'remote',
      remote_python_prefix: '/home/u/proj/.venv',
      remote_kernel_name: 'python3',
      language: 'python',
      display_name: 'Python (proj) on remote',
      kernel_name: 'ssh-remote-proj'
    });
    // nothing that is not the user's: no ssh config, no typed prefix
    expect('ssh_config' in adds[0].body).toBe(false);
    expect(onDone).toHaveBeenCalledWith('ssh-remote-base-2');
    server.model.dispose();
  });

  it('says why a login failed and discovers nothing', async () => {
    const server = fakeServer();
    const logins = fakeLogins('failed');
    await renderForm(server.model, { logins });
    await pickHost('remote');
    await click(q('sshpyk-check-connection'));
    await act(async () => logins.finish());
    await until(
      () => q('sshpyk-connection-note')!.dataset.phase === 'failed',
      'the failure'
    );
    expect(q('sshpyk-connection-note')!.textContent).toBe(
      'Could not connect to remote: Permission denied (password)'
    );
    expect(all('sshpyk-env')).toHaveLength(0);
    expect(
      server.requests.some(r => r.url.pathname.endsWith('/environments'))
    ).toBe(false);
    server.model.dispose();
  });

  it('takes a typed user@host and asks for its environments with the ssh config', async () => {
    const server = fakeServer();
    await renderForm(server.model, {
      initial: { ssh_host_alias: 'me@10.200.7.2', ssh_config: '/tmp/cfg' }
    });
    await until(() => !!q('sshpyk-host-input'), 'the typed host');
    expect((q('sshpyk-host-input') as HTMLInputElement).value).toBe(
      'me@10.200.7.2'
    );
    await click(q('sshpyk-check-connection'));
    await until(
      () => q('sshpyk-connection-note')!.dataset.phase === 'failed',
      'the answer'
    );
    const asked = server.requests.find(r =>
      r.url.pathname.endsWith('/environments')
    )!;
    // a POST: it runs programs on the host; the config in the body, never
    // in a query
    expect(asked.method).toBe('POST');
    expect(asked.url.pathname).toBe(
      '/sshpyk/hosts/me%4010.200.7.2/environments'
    );
    expect(asked.url.searchParams.has('ssh_config')).toBe(false);
    expect(asked.body).toEqual({ ssh_config: '/tmp/cfg' });
    server.model.dispose();
  });
});

describe('"Advanced"', () => {
  it('holds every field but the host, all rendered from the schema', async () => {
    const server = fakeServer();
    await renderForm(server.model);
    const inside = Object.keys(SCHEMA.properties).filter(
      key => key !== 'ssh_host_alias'
    );
    for (const key of inside) {
      const field = q(`sshpyk-field-${key}`);
      expect(field).not.toBeNull();
      expect(advanced().contains(field)).toBe(true);
    }
    expect(advanced().contains(q('sshpyk-field-ssh_host_alias'))).toBe(false);
    server.model.dispose();
  });

  it('opens for an edited kernel that has more set than its host', async () => {
    expect(hasAdvancedValues(SCHEMA, { ssh_host_alias: 'remote' })).toBe(false);
    expect(
      hasAdvancedValues(SCHEMA, {
        ssh_host_alias: 'remote',
        launch_timeout: 60
      })
    ).toBe(false);
    expect(hasAdvancedValues(SCHEMA, { launch_timeout: 90 })).toBe(true);

    const server = fakeServer();
    await renderForm(server.model, {
      mode: 'edit',
      initial: {
        kernel_name: 'k',
        display_name: 'K',
        language: 'python',
        ssh_host_alias: 'remote',
        remote_python_prefix: '/opt/env',
        remote_kernel_name: 'python3'
      }
    });
    await until(() => advanced().open, 'Advanced open');
    // editing changes one kernel: no short path
    expect(q('sshpyk-short-path')).toBeNull();
    server.model.dispose();
  });
});

describe('the error summary', () => {
  it("names the form's own finds, opens Advanced and focuses the first", async () => {
    const server = fakeServer();
    await renderForm(server.model);
    await pickHost('remote');
    await click(q('sshpyk-form-submit'));
    await until(() => !!q('sshpyk-form-summary'), 'the summary');
    expect(advanced().open).toBe(true);
    expect(q('sshpyk-form-summary')!.textContent).toBe(
      '5 fields need attention: Remote Python prefix, Remote kernel, Display name, Kernel name, Language'
    );
    expect(document.activeElement).toBe(
      host.querySelector('#root_remote_python_prefix')
    );
    expect(q('sshpyk-error-kernel_name')!.textContent).toBe('is required');
    server.model.dispose();
  });

  it("puts each of the server's errors at its field, in words", async () => {
    const server = fakeServer();
    server.onAdd = () =>
      json(
        {
          message: "kernel_name: 'My K' must match ^(?!\\.\\.?$)[a-z0-9._-]+$",
          field: 'kernel_name',
          errors: [
            {
              field: 'kernel_name',
              message:
                "kernel_name: 'My K' must match ^(?!\\.\\.?$)[a-z0-9._-]+$"
            },
            {
              field: 'launch_timeout',
              message: 'launch_timeout: 0 must be from 1 to 3600'
            }
          ]
        },
        400
      );
    await renderForm(server.model, {
      initial: {
        remote_python_prefix: '/opt/env',
        remote_kernel_name: 'python3',
        display_name: 'K',
        kernel_name: 'My K',
        language: 'python',
        launch_timeout: 0
      }
    });
    await pickHost('remote');
    expect(advanced().open).toBe(false);
    await click(q('sshpyk-form-submit'));
    await until(() => !!q('sshpyk-form-summary'), 'the summary');
    expect(q('sshpyk-form-summary')!.textContent).toBe(
      '2 fields need attention: Kernel name, Launch timeout (s)'
    );
    expect(advanced().open).toBe(true);
    const words = q('sshpyk-error-kernel_name')!.textContent!;
    expect(words).toBe(
      "'My K' is not valid: use lowercase letters, digits, '.', '_' and '-' only (no spaces or capitals)"
    );
    expect(words).not.toContain('^');
    expect(q('sshpyk-error-launch_timeout')!.textContent).toBe(
      '0 must be from 1 to 3600'
    );
    await until(
      () => document.activeElement === host.querySelector('#root_kernel_name'),
      'the focus on the kernel name'
    );
    // nothing on top of the form: every message is at its field
    expect(q('sshpyk-form-error')).toBeNull();

    // a change clears the server's verdict
    await type('root_kernel_name', 'my-k');
    expect(q('sshpyk-form-summary')).toBeNull();
    server.model.dispose();
  });

  it("takes today's one-field refusal too", async () => {
    const server = fakeServer();
    server.onAdd = () =>
      json(
        {
          message: "ssh_host_alias: 'a b' is not a plain ssh Host alias",
          field: 'ssh_host_alias'
        },
        400
      );
    await renderForm(server.model, {
      initial: {
        ssh_host_alias: 'a b',
        remote_python_prefix: '/p',
        remote_kernel_name: 'python3',
        display_name: 'D',
        kernel_name: 'd',
        language: 'python'
      }
    });
    await until(() => !!q('sshpyk-host-input'), 'the typed host');
    await click(q('sshpyk-form-submit'));
    await until(() => !!q('sshpyk-form-summary'), 'the summary');
    expect(q('sshpyk-form-summary')!.textContent).toBe(
      '1 field needs attention: SSH host alias'
    );
    // the host is not in Advanced: it stays closed
    expect(advanced().open).toBe(false);
    await until(
      () => document.activeElement === q('sshpyk-host-input'),
      'the focus on the typed host'
    );
    server.model.dispose();
  });
});

describe('the pieces', () => {
  it('call the environments route as the OpenAPI document has it', () => {
    const doc = JSON.parse(
      fs.readFileSync(
        path.join(__dirname, '..', '..', 'sshpyk', 'resources', 'openapi.json'),
        'utf-8'
      )
    );
    const post = doc.paths[`/sshpyk/${ENVIRONMENTS_ROUTE}`].post;
    expect(post.deprecated ?? false).toBe(false);
    expect(
      Object.keys(
        post.requestBody.content['application/json'].schema.properties
      )
    ).toEqual(['ssh_config']);
    const reply = post.responses['200'].content['application/json'].schema;
    expect(reply.required).toEqual(['environments', 'errors']);
    // typed: the compiler refuses a missing field and an unknown one
    expect(Object.keys(env({})).sort()).toEqual(
      Object.keys(reply.properties.environments.items.properties).sort()
    );
  });

  it('reads every invalid field of a refusal', async () => {
    const settings = ServerConnection.makeSettings({
      baseUrl: 'http://localhost:8888/',
      fetch: (async () =>
        json(
          {
            message: 'a: bad',
            field: 'a',
            errors: [
              { field: 'a', message: 'a: bad' },
              { field: 'b', message: 'b: worse' },
              { nonsense: true }
            ]
          },
          400
        )) as any
    });
    const error = await requestAPI('kernelspecs', settings, {
      method: 'POST'
    }).then(
      () => null,
      (e: SshpykResponseError) => e
    );
    expect(error).toBeInstanceOf(SshpykResponseError);
    expect(error?.errors).toEqual([
      { field: 'a', message: 'a: bad' },
      { field: 'b', message: 'b: worse' }
    ]);
  });

  it('names fields by their titles and never shows a regex', () => {
    expect(fieldLabel(SCHEMA, 'slurm.time')).toBe('Slurm: Time limit');
    expect(fieldLabel(SCHEMA, 'mount_local_on_remote[1].local_path')).toBe(
      'SSHFS mounts 2: Local directory'
    );
    expect(
      inWords(
        SCHEMA,
        'remote_kernel_name',
        "remote_kernel_name: 'Py 3' must match ^(?!\\.\\.?$)[a-z0-9._-]+$"
      )
    ).toBe(
      "'Py 3' is not valid: use lowercase letters, digits, '.', '_' and '-' only (no spaces or capitals)"
    );
    // the schema as the OpenAPI document serves it: no x-sshpyk-check
    const served = JSON.parse(JSON.stringify(SCHEMA), (key, value) =>
      key === 'x-sshpyk-check' ? undefined : value
    );
    expect(served.properties.kernel_name['x-sshpyk-check']).toBeUndefined();
    expect(
      inWords(
        served,
        'kernel_name',
        "kernel_name: 'A B' must match ^(?!\\.\\.?$)[a-z0-9._-]+$"
      )
    ).toBe(
      "'A B' is not valid: use lowercase letters, digits, '.', '_' and '-' only (no spaces or capitals)"
    );
    // a message in words stays as it is, without its field prefix
    expect(
      inWords(SCHEMA, 'slurm.mem', "slurm.mem: '4X' is not an amount")
    ).toBe("'4X' is not an amount");
    const { placed, unplaced } = errorSchemaOf(SCHEMA, [
      { field: 'nope', message: 'nope: what' },
      { field: 'language', message: 'language: must not be blank' }
    ]);
    expect(unplaced).toEqual(['nope: what']);
    expect(summaryWords(SCHEMA, placed)).toBe(
      '1 field needs attention: Language'
    );
  });

  it('derives unique names, and the module load of a module environment', () => {
    expect(uniqueKernelName('me@gpu.example.org', 'My Env', new Set())).toBe(
      'ssh-gpu.example.org-my-env'
    );
    const withPrelude = {
      ...SCHEMA,
      properties: {
        ...SCHEMA.properties,
        prelude: { type: ['array', 'null'], items: { type: 'string' } }
      }
    };
    const [body] = environmentBodies(
      withPrelude,
      {
        ssh_host_alias: 'hpc',
        display_name: 'Mine',
        launch_timeout: 90,
        prelude: ['export A=1']
      },
      [env({ kind: 'module', name: 'python-3.11', module: 'python/3.11' })],
      []
    );
    expect(body).toEqual({
      ssh_host_alias: 'hpc',
      display_name: 'Mine',
      launch_timeout: 90,
      remote_python_prefix: '/opt/conda',
      remote_kernel_name: 'python3',
      language: 'python',
      kernel_name: 'ssh-hpc-python-3.11',
      prelude: ['module load python/3.11', 'export A=1']
    });
    // the host's word for a module is quoted for the shell the prelude runs in
    expect(shellWord('python/3.11')).toBe('python/3.11');
    expect(shellWord("py;it's")).toBe(`'py;it'"'"'s'`);
  });
});
