import { JupyterFrontEnd } from '@jupyterlab/application';
import { ServerConnection } from '@jupyterlab/services';
import { Signal } from '@lumino/signaling';

import plugins, { ISshpykModel, SshpykModel } from '../index';

describe('the plugins', () => {
  it('provide the model behind its token, and the views require it', () => {
    const provider = plugins.find(p => p.provides === ISshpykModel);
    expect(provider?.id).toBe('sshpyk:model');
    const views = plugins.find(p => p.id === 'sshpyk:plugin');
    expect(views?.requires).toContain(ISshpykModel);
    expect(ISshpykModel.name).toBe('sshpyk:model');
  });

  it('make a model that reloads the SSH kernelspecs when Lab says they changed', async () => {
    const calls: string[] = [];
    const serverSettings = ServerConnection.makeSettings({
      baseUrl: 'http://localhost:8888/',
      fetch: (async (request: Request) => {
        calls.push(`${request.method} ${new URL(request.url).pathname}`);
        return new Response('{"kernels": [{"name": "ssh-a", "ssh": true}]}');
      }) as any
    });
    const specsChanged = new Signal<unknown, unknown>({});
    const app = {
      serviceManager: {
        serverSettings,
        kernelspecs: { specsChanged, refreshSpecs: async () => {} }
      }
    } as unknown as JupyterFrontEnd;
    const provider = plugins.find(p => p.provides === ISshpykModel)!;
    const model = (await provider.activate(app)) as ISshpykModel;
    expect(model).toBeInstanceOf(SshpykModel);

    const loaded = new Promise<void>(resolve =>
      model.kernelspecsChanged.connect(() => resolve())
    );
    specsChanged.emit(null);
    await loaded;
    expect(model.kernelspecs?.map(k => k.name)).toEqual(['ssh-a']);
    expect(calls).toContain('GET /sshpyk/kernelspecs');
    model.dispose();
  });
});
