/**
 * The TypeScript side of the REST contract, held against the OpenAPI document
 * the server extension serves (`sshpyk/resources/openapi.json`, written by
 * `python -m sshpyk.server.openapi` from the Python enums and route table).
 */
import * as fs from 'fs';
import * as path from 'path';

import { ServerConnection } from '@jupyterlab/services';

import * as api from '../api';
import * as loginApi from '../login/api';
import * as slurmApi from '../slurm/api';
import {
  CHECK_STATUSES,
  LOGIN_STATES,
  MOUNT_STATES,
  SLURM_JOB_STATES,
  TUNNEL_STATES
} from '../states';

const DOCUMENT = path.join(
  __dirname,
  '..',
  '..',
  'sshpyk',
  'resources',
  'openapi.json'
);
const doc = JSON.parse(fs.readFileSync(DOCUMENT, 'utf-8'));
const VERBS = ['get', 'put', 'post', 'patch', 'delete'];

/**
 * The document's path (with its operation) that a concrete request hits.
 */
function operationOf(
  method: string,
  url: string
): { path: string; operation: any } | null {
  for (const [template, item] of Object.entries<any>(doc.paths)) {
    const pattern = new RegExp(
      '^' + template.replace(/\{[^}]+\}/g, '[^/?]+') + '$'
    );
    if (pattern.test(url) && item[method.toLowerCase()]) {
      return { path: template, operation: item[method.toLowerCase()] };
    }
  }
  return null;
}

describe('the state vocabularies', () => {
  it.each([
    ['TunnelState', TUNNEL_STATES],
    ['MountState', MOUNT_STATES],
    ['CheckStatus', CHECK_STATUSES],
    ['LoginState', LOGIN_STATES],
    ['SlurmJobState', SLURM_JOB_STATES]
  ])('%s is the enum of the OpenAPI document', (name, values) => {
    expect([...values]).toEqual(doc.components.schemas[name].enum);
  });
});

describe('the routes api.ts calls', () => {
  it('are all paths of the document, and none is deprecated', () => {
    const paths = Object.keys(doc.paths).map(p =>
      p.replace(/\{[^}]+\}/g, '{}')
    );
    for (const template of [
      ...Object.values(api.ROUTES),
      ...Object.values(loginApi.LOGIN_ROUTES),
      ...Object.values(slurmApi.SLURM_ROUTES)
    ]) {
      const spelled = `/${api.API_NAMESPACE}/${template}`.replace(
        /\{[^}]+\}/g,
        '{}'
      );
      expect(paths).toContain(spelled);
      const item = doc.paths[Object.keys(doc.paths)[paths.indexOf(spelled)]];
      for (const verb of VERBS.filter(v => v in item)) {
        expect([spelled, verb, item[verb].deprecated ?? false]).toEqual([
          spelled,
          verb,
          false
        ]);
      }
    }
  });

  describe('each request function', () => {
    let makeRequest: jest.SpyInstance;
    const settings = ServerConnection.makeSettings({
      baseUrl: 'http://localhost:8888/'
    });

    beforeEach(() => {
      // one reply every function accepts: a version, a schema, an empty
      // list, a finished check stream
      makeRequest = jest
        .spyOn(ServerConnection, 'makeRequest')
        .mockImplementation(
          async () =>
            new Response(
              JSON.stringify({
                version: '0',
                components: { schemas: { SSHKernel: {} } },
                kernels: [],
                kernelspecs: [],
                hosts: [],
                logins: [],
                done: true,
                ok: true
              })
            )
        );
    });

    afterEach(() => {
      makeRequest.mockRestore();
    });

    // every exported function that makes a request, called once
    const calls: Record<string, () => Promise<unknown>> = {
      getVersion: () => api.getVersion(settings),
      getKernelSchema: () => api.getKernelSchema(settings),
      listKernelspecs: () => api.listKernelspecs(settings),
      addKernelspec: () => api.addKernelspec(settings, { kernel_name: 'k' }),
      editKernelspec: () => api.editKernelspec(settings, 'k', {}),
      deleteKernelspec: () => api.deleteKernelspec(settings, 'k'),
      checkKernelspec: () => api.checkKernelspec(settings, 'k', () => {}),
      listHosts: () => api.listHosts(settings),
      listHostsOfConfig: () => api.listHosts(settings, '/c'),
      discoverKernelspecs: () =>
        api.discoverKernelspecs(settings, 'gpu box', '/opt/env'),
      listOrphans: () => api.listOrphans(settings),
      attachOrphan: () => api.attachOrphan(settings, 'o1'),
      shutDownOrphan: () => api.shutDownOrphan(settings, 'o1'),
      getTunnelStatus: () => api.getTunnelStatus(settings),
      cancelLaunch: () => slurmApi.cancelLaunch(settings, 'k1'),
      listLogins: () => loginApi.listLogins(settings),
      startLogin: () => loginApi.startLogin(settings, 'hpc', '/c'),
      answerLogin: () => loginApi.answerLogin(settings, 'l1', 'p1', '123456'),
      cancelLogin: () => loginApi.cancelLogin(settings, 'l1')
    };

    it('is called here (a new one must be added to this table)', () => {
      // the generic request functions and the route helper call no route
      const generic = ['requestAPI', 'requestLines', 'route'];
      const exported = Object.entries({ ...api, ...loginApi, ...slurmApi })
        .filter(
          ([name, value]) =>
            typeof value === 'function' &&
            !generic.includes(name) &&
            !/^[A-Z]/.test(name)
        )
        .map(([name]) => name);
      expect(exported.filter(name => !(name in calls))).toEqual([]);
    });

    it.each(Object.keys(calls))(
      '%s calls a route and verb of the document',
      async name => {
        await calls[name]();
        expect(makeRequest).toHaveBeenCalledTimes(1);
        const [url, init] = makeRequest.mock.calls[0];
        const method = init.method ?? 'GET';
        const local = new URL(url).pathname;
        expect([method, local, operationOf(method, local)?.path]).toEqual([
          method,
          local,
          expect.any(String)
        ]);
      }
    );
  });

  it('the list of GET logins is under the key the client reads', () => {
    const reply =
      doc.paths[`/sshpyk/${loginApi.LOGIN_ROUTES.logins}`].get.responses['200'];
    expect(
      Object.keys(reply.content['application/json'].schema.properties)
    ).toContain('logins');
  });

  it.each(['kernelspecs', 'status', 'orphans'] as const)(
    'the list of GET %s is under the key the client reads',
    route => {
      const reply =
        doc.paths[`/sshpyk/${api.ROUTES[route]}`].get.responses['200'];
      expect(
        Object.keys(reply.content['application/json'].schema.properties)
      ).toContain('kernels');
    }
  );

  it("the status's slurm member has exactly the fields ISlurmStatus types", () => {
    // typed: the compiler refuses a missing field and an unknown one
    const typed: slurmApi.ISlurmStatus = {
      job_id: null,
      state: null,
      reason: null,
      node: null,
      est_start: null,
      ends_at: null,
      warn_at: null,
      time_limit: null,
      ended: null
    };
    expect(Object.keys(typed).sort()).toEqual(
      Object.keys(doc.components.schemas.SlurmStatus.properties).sort()
    );
  });
});
