/**
 * The kernel form's optional sections, Slurm and the container, rendered
 * from the real kernel schema (`sshpyk/resources/ssh-kernel.schema.json`)
 * with a fake of the model's server calls: collapsed unless on, the Slurm
 * toggle sets relay channels, the members keep their schema titles, and the
 * form's and the server's errors land next to the member they name.
 */

import { nullTranslator } from '@jupyterlab/translation';
import * as React from 'react';
import { act } from 'react';
import { createRoot, Root } from 'react-dom/client';

import { SshpykResponseError } from '../api';
import {
  initialFormData,
  KernelFormData,
  newKernelBody,
  patchBody,
  uiSchemaFor,
  withSlurmChannels
} from '../formdata';
import { errorSchemaOf } from '../formerrors';
import { KernelForm } from '../sidebar/form';

import { KERNEL_SCHEMA } from './kernelschema';
import { until } from './until';

(globalThis as any).IS_REACT_ACT_ENVIRONMENT = true;

const SCHEMA = KERNEL_SCHEMA;
const trans = nullTranslator.load('sshpyk');

// what the server answers for a kernel: every field, at its default if unset
const DEFAULTS: KernelFormData = Object.fromEntries(
  Object.entries<any>(SCHEMA.properties)
    .filter(([, rule]) => 'default' in rule)
    .map(([key, rule]) => [key, rule.default])
);

const KERNEL: KernelFormData = {
  ...DEFAULTS,
  kernel_name: 'hpc',
  display_name: 'HPC',
  language: 'python',
  interrupt_mode: 'message',
  ssh_host_alias: 'login',
  remote_python_prefix: '/opt/env',
  remote_kernel_name: 'python3',
  channels: 'forward',
  slurm: null
};

/**
 * A new kernel's data as the Add form starts it: no `slurm` key at all.
 */
function withoutSlurm(): KernelFormData {
  const data = { ...KERNEL };
  delete data.slurm;
  return data;
}

const SLURM = {
  partition: 'gpu',
  time: '8:00:00',
  cpus: null,
  mem: null,
  gpus: null,
  account: null,
  qos: null,
  constraint: null,
  sbatch_options: ['--exclusive'],
  walltime_warning: 10
};

function fakeModel(over: Record<string, any> = {}): any {
  return {
    schema: async () => SCHEMA,
    listHosts: async () => ({ ssh_config: '~/.ssh/config', hosts: [] }),
    discoverKernelspecs: async () => ({ kernelspecs: [] }),
    add: jest.fn(async (body: KernelFormData) => ({ name: body.kernel_name })),
    edit: jest.fn(async (name: string) => ({ name })),
    ...over
  };
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

async function renderForm(
  model: any,
  mode: 'add' | 'edit',
  initial?: KernelFormData
): Promise<{ onDone: jest.Mock }> {
  const onDone = jest.fn();
  await act(async () =>
    root.render(
      <KernelForm
        model={model}
        mode={mode}
        initial={initial}
        onDone={onDone}
        onCancel={() => undefined}
        trans={trans}
      />
    )
  );
  await until(() => !!q('sshpyk-slurm'), 'the form');
  return { onDone };
}

function q(testId: string): HTMLElement | null {
  return host.querySelector(`[data-testid="${testId}"]`);
}

function input(id: string): HTMLInputElement | HTMLSelectElement {
  const el = host.querySelector<HTMLInputElement>(`#${id}`);
  if (!el) {
    throw new Error(`no input #${id}`);
  }
  return el;
}

/**
 * Types into an input the way React sees it (its value setter, then input).
 */
async function type(id: string, value: string): Promise<void> {
  const el = input(id) as HTMLInputElement;
  const setter = Object.getOwnPropertyDescriptor(
    HTMLInputElement.prototype,
    'value'
  )!.set!;
  await act(async () => {
    setter.call(el, value);
    el.dispatchEvent(new Event('input', { bubbles: true }));
  });
}

async function submit(): Promise<void> {
  await act(async () => q('sshpyk-form-submit')!.click());
}

describe('the Slurm section of the kernel form', () => {
  it('is collapsed and off for a new kernel, and off means no slurm', async () => {
    const model = fakeModel();
    await renderForm(model, 'add', withoutSlurm());
    const details = q('sshpyk-slurm') as HTMLDetailsElement;
    expect(details.open).toBe(false);
    expect((q('sshpyk-slurm-toggle') as HTMLInputElement).checked).toBe(false);
    expect(host.querySelector('#root_slurm_partition')).toBeNull();
    await submit();
    await until(() => model.add.mock.calls.length === 1, 'the add');
    const body = model.add.mock.calls[0][0];
    expect('slurm' in body).toBe(false);
    expect(body.channels).toBe('forward');
  });

  it('turned on shows the fields with their schema titles and sets relay', async () => {
    const model = fakeModel();
    await renderForm(model, 'add', withoutSlurm());
    await act(async () => q('sshpyk-slurm-toggle')!.click());
    expect((q('sshpyk-slurm') as HTMLDetailsElement).open).toBe(true);
    const members = SCHEMA.properties.slurm.properties;
    for (const key of ['partition', 'time', 'cpus', 'mem', 'gpus']) {
      const label = host.querySelector(`label[for="root_slurm_${key}"]`);
      expect(label?.textContent).toContain(members[key].title);
    }
    expect(host.textContent).toContain(members.time.description);
    expect(host.textContent).toContain(members.sbatch_options.title);
    const channels = input('root_channels') as HTMLSelectElement;
    expect(channels.selectedOptions[0].textContent).toBe('relay');

    await type('root_slurm_partition', 'gpu');
    await type('root_slurm_time', '2:00:00');
    await submit();
    await until(() => model.add.mock.calls.length === 1, 'the add');
    const body = model.add.mock.calls[0][0];
    expect(body.channels).toBe('relay');
    expect(body.slurm).toEqual({
      partition: 'gpu',
      time: '2:00:00',
      sbatch_options: [],
      walltime_warning: 10
    });
  });

  it('is open for a Slurm kernel and shows the server error at its member', async () => {
    const model = fakeModel({
      edit: jest.fn(async () => {
        throw new SshpykResponseError(
          new Response('{}', { status: 400 }),
          'slurm.sbatch_options[0]: --wrap is not allowed: it runs a program',
          'slurm.sbatch_options[0]'
        );
      })
    });
    const initial = { ...KERNEL, channels: 'relay', slurm: SLURM };
    await renderForm(model, 'edit', initial);
    expect((q('sshpyk-slurm') as HTMLDetailsElement).open).toBe(true);
    expect((q('sshpyk-slurm-toggle') as HTMLInputElement).checked).toBe(true);
    expect(input('root_slurm_partition').value).toBe('gpu');
    expect(input('root_slurm_sbatch_options_0').value).toBe('--exclusive');

    await type('root_slurm_sbatch_options_0', '--wrap=id');
    await submit();
    await until(
      () => !!q('sshpyk-error-slurm_sbatch_options_0'),
      'the error at the option'
    );
    expect(q('sshpyk-error-slurm_sbatch_options_0')!.textContent).toBe(
      '--wrap is not allowed: it runs a program'
    );
    // the object whole, without its empty members (the server's defaults)
    expect(model.edit.mock.calls[0][1]).toEqual({
      slurm: {
        partition: 'gpu',
        time: '8:00:00',
        sbatch_options: ['--wrap=id'],
        walltime_warning: 10
      }
    });
  });

  it('turned off sends slurm null', async () => {
    const model = fakeModel();
    const initial = { ...KERNEL, channels: 'relay', slurm: SLURM };
    await renderForm(model, 'edit', initial);
    await act(async () => q('sshpyk-slurm-toggle')!.click());
    expect(host.querySelector('#root_slurm_partition')).toBeNull();
    await submit();
    await until(() => model.edit.mock.calls.length === 1, 'the edit');
    expect(model.edit.mock.calls[0]).toEqual(['hpc', { slurm: null }]);
  });
});

describe('the Slurm form data', () => {
  it('starts an optional object at null so rjsf does not turn it on', () => {
    expect(initialFormData(SCHEMA, {}).slurm).toBeNull();
    expect(initialFormData(SCHEMA, { slurm: SLURM }).slurm).toBe(SLURM);
    expect(initialFormData(SCHEMA, {}).ssh_config).toBeUndefined();
  });

  it('sets relay channels only when Slurm is turned on', () => {
    const off = { channels: 'forward', slurm: null };
    expect(withSlurmChannels(off, { ...off, slurm: {} }).channels).toBe(
      'relay'
    );
    // already on: the user's own choice stays (the server says why not)
    const on = { channels: 'relay', slurm: {} };
    expect(withSlurmChannels(on, { ...on, channels: 'forward' }).channels).toBe(
      'forward'
    );
    expect(withSlurmChannels(off, { ...off, display_name: 'x' })).toEqual({
      ...off,
      display_name: 'x'
    });
  });

  it('leaves empty members out of the bodies, and an unchanged object out of a patch', () => {
    expect(
      newKernelBody({ slurm: { partition: 'gpu', time: undefined, mem: '' } })
    ).toEqual({ slurm: { partition: 'gpu' } });
    const edited = { ...KERNEL, slurm: { ...SLURM, cpus: undefined } };
    expect(patchBody(SCHEMA, { ...KERNEL, slurm: SLURM }, edited)).toEqual({});
    expect(
      patchBody(SCHEMA, { ...KERNEL, slurm: SLURM }, { ...KERNEL, slurm: null })
    ).toEqual({ slurm: null });
  });

  it('renders slurm with its own field and lists its options unordered', () => {
    const ui = uiSchemaFor(SCHEMA, 'add');
    expect(ui.slurm['ui:field']).toBe('slurm');
    expect(ui.slurm.sbatch_options['ui:options']).toEqual({
      orderable: false
    });
    const order = ui['ui:order'] as string[];
    expect(order.indexOf('slurm')).toBeLessThan(
      order.indexOf('mount_local_on_remote')
    );
  });
});

const CONTAINER = {
  runtime: 'podman',
  image: 'localhost/sshpyk-test:1',
  python: 'python3',
  options: ['--device=nvidia.com/gpu=all']
};

/**
 * A new kernel's data as the Add form starts it: no `container` key.
 */
function withoutContainer(): KernelFormData {
  const data = withoutSlurm();
  delete data.container;
  return data;
}

/**
 * The option a select shows (rjsf's options are valued by their index).
 */
function shown(id: string): string | null {
  return (input(id) as HTMLSelectElement).selectedOptions[0].textContent;
}

/**
 * Picks the option with these words, the way React sees it.
 */
function select(id: string, words: string): Promise<void> {
  const el = input(id) as HTMLSelectElement;
  const option = [...el.options].find(o => o.textContent === words);
  if (!option) {
    throw new Error(`no option ${words} in #${id}`);
  }
  return act(async () => {
    el.value = option.value;
    el.dispatchEvent(new Event('change', { bubbles: true }));
  });
}

describe('the container section of the kernel form', () => {
  it('sits under Advanced after the prelude, off and collapsed for a new kernel', async () => {
    const model = fakeModel();
    await renderForm(model, 'add', withoutContainer());
    const details = q('sshpyk-container') as HTMLDetailsElement;
    expect(q('sshpyk-advanced')!.contains(details)).toBe(true);
    expect(q('sshpyk-field-prelude')!.nextElementSibling).toBe(
      q('sshpyk-field-container')
    );
    expect(details.open).toBe(false);
    const toggle = q('sshpyk-container-toggle') as HTMLInputElement;
    expect(toggle.checked).toBe(false);
    expect(toggle.parentElement!.textContent).toContain(
      'Run the kernel in a container'
    );
    expect(host.querySelector('#root_container_image')).toBeNull();
    await submit();
    await until(() => model.add.mock.calls.length === 1, 'the add');
    expect('container' in model.add.mock.calls[0][0]).toBe(false);
  });

  it('turned on shows its members, asks for the image, and sends what the server takes', async () => {
    const model = fakeModel();
    await renderForm(model, 'add', withoutContainer());
    await act(async () => q('sshpyk-container-toggle')!.click());
    expect((q('sshpyk-container') as HTMLDetailsElement).open).toBe(true);
    // the summary says "Container"; no second heading with the key
    expect(host.querySelector('#root_container__title')).toBeNull();
    const members = SCHEMA.properties.container.properties;
    for (const key of ['runtime', 'image', 'python']) {
      const label = host.querySelector(`label[for="root_container_${key}"]`);
      expect(label?.textContent).toContain(members[key].title);
    }
    expect(host.textContent).toContain(members.image.description);
    expect(host.textContent).toContain(members.options.title);
    // the schema's defaults: apptainer, the image's python3
    expect(shown('root_container_runtime')).toBe('apptainer');
    expect(input('root_container_python').value).toBe('python3');
    // Slurm's relay is not a container's business
    expect(shown('root_channels')).toBe('forward');

    // the image is required: said at the field and in the summary
    await submit();
    await until(() => !!q('sshpyk-error-container_image'), 'the error');
    expect(q('sshpyk-error-container_image')!.textContent).toBe('is required');
    expect(q('sshpyk-form-summary')!.textContent).toBe(
      '1 field needs attention: Container: Image'
    );
    expect(model.add).not.toHaveBeenCalled();

    await select('root_container_runtime', 'podman');
    await type('root_container_image', 'localhost/sshpyk-test:1');
    await submit();
    await until(() => model.add.mock.calls.length === 1, 'the add');
    expect(model.add.mock.calls[0][0].container).toEqual({
      runtime: 'podman',
      image: 'localhost/sshpyk-test:1',
      python: 'python3',
      options: []
    });
  });

  it("shows the server's errors at the members they name, and names them in the summary", async () => {
    const model = fakeModel({
      add: jest.fn(async () => {
        throw new SshpykResponseError(
          new Response('{}', { status: 400 }),
          '2 fields are invalid',
          'container.image',
          [
            {
              field: 'container.image',
              message:
                "container.image: '-x' starts with '-' (the runtime would read an option)"
            },
            {
              field: 'container.options[0]',
              message:
                'container.options[0]: --name is not allowed: sshpyk names the container, to stop it with the kernel'
            }
          ]
        );
      })
    });
    const initial = {
      ...withoutContainer(),
      container: { ...CONTAINER, image: '-x', options: ['--name=k'] }
    };
    await renderForm(model, 'add', initial);
    expect((q('sshpyk-container') as HTMLDetailsElement).open).toBe(true);
    await submit();
    await until(() => !!q('sshpyk-error-container_image'), 'the errors');
    expect(q('sshpyk-error-container_image')!.textContent).toBe(
      "'-x' starts with '-' (the runtime would read an option)"
    );
    expect(q('sshpyk-error-container_options_0')!.textContent).toBe(
      '--name is not allowed: sshpyk names the container, to stop it with the kernel'
    );
    expect(q('sshpyk-form-summary')!.textContent).toBe(
      '2 fields need attention: Container: Image, Container: Runtime options 1'
    );
    await until(
      () => document.activeElement === input('root_container_image'),
      'the focus on the image'
    );
  });

  it('is open for a kernel in a container, and turned off sends container null', async () => {
    const model = fakeModel();
    await renderForm(model, 'edit', { ...KERNEL, container: CONTAINER });
    expect((q('sshpyk-container') as HTMLDetailsElement).open).toBe(true);
    expect((q('sshpyk-container-toggle') as HTMLInputElement).checked).toBe(
      true
    );
    expect(shown('root_container_runtime')).toBe('podman');
    expect(input('root_container_options_0').value).toBe(
      '--device=nvidia.com/gpu=all'
    );
    await act(async () => q('sshpyk-container-toggle')!.click());
    expect(host.querySelector('#root_container_image')).toBeNull();
    await submit();
    await until(() => model.edit.mock.calls.length === 1, 'the edit');
    expect(model.edit.mock.calls[0]).toEqual(['hpc', { container: null }]);
  });

  it('renders container with its own field and lists its options unordered', () => {
    const ui = uiSchemaFor(SCHEMA, 'add');
    expect(ui.container['ui:field']).toBe('container');
    expect(ui.container.options['ui:options']).toEqual({ orderable: false });
    expect(initialFormData(SCHEMA, {}).container).toBeNull();
  });

  it("places the server's dotted and indexed names at their members", () => {
    const { errorSchema, placed, unplaced } = errorSchemaOf(SCHEMA, [
      { field: 'slurm.time', message: "slurm.time: '9h' is not a time" },
      { field: 'container.image', message: 'container.image: is required' },
      {
        field: 'container.options[0]',
        message: "container.options[0]: 'x' is not an option"
      }
    ]);
    expect(unplaced).toEqual([]);
    expect(placed.map(e => e.field)).toEqual([
      'slurm.time',
      'container.image',
      'container.options[0]'
    ]);
    expect(errorSchema).toEqual({
      slurm: { time: { __errors: ["'9h' is not a time"] } },
      container: {
        image: { __errors: ['is required'] },
        options: { 0: { __errors: ["'x' is not an option"] } }
      }
    });
  });
});
