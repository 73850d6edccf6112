import { errorSchemaOf } from '../formerrors';
import {
  fieldPath,
  newKernelBody,
  onlyRequiredErrors,
  patchBody,
  suggestKernelName,
  uiSchemaFor
} from '../formdata';

const schema = {
  required: ['kernel_name', 'display_name'],
  properties: {
    kernel_name: { type: 'string' },
    display_name: { type: 'string' },
    ssh_host_alias: { type: 'string' },
    remote_kernel_name: { type: 'string' },
    ssh_config: { type: ['string', 'null'], default: null },
    launch_timeout: { type: 'integer', default: 60 },
    mount_local_on_remote: { type: 'array', default: [] }
  }
};

describe('errorSchemaOf', () => {
  it('puts a top-level message at its field without the name prefix', () => {
    expect(
      errorSchemaOf(schema, [
        { field: 'ssh_config', message: "ssh_config: 'x;y' contains ';'" }
      ]).errorSchema
    ).toEqual({ ssh_config: { __errors: ["'x;y' contains ';'"] } });
  });

  it('follows a nested mount field to its row', () => {
    expect(fieldPath('mount_local_on_remote[0].remote_path')).toEqual([
      'mount_local_on_remote',
      '0',
      'remote_path'
    ]);
    expect(
      errorSchemaOf(schema, [
        {
          field: 'mount_local_on_remote[0].remote_path',
          message:
            "mount_local_on_remote[0].remote_path: 'rel' must be absolute"
        }
      ]).errorSchema
    ).toEqual({
      mount_local_on_remote: {
        0: { remote_path: { __errors: ["'rel' must be absolute"] } }
      }
    });
  });

  it('has no field for the body or unknown names', () => {
    const { errorSchema, placed, unplaced } = errorSchemaOf(schema, [
      { field: 'body', message: 'is not JSON' },
      { field: '', message: 'boom' }
    ]);
    expect(errorSchema).toEqual({});
    expect(placed).toEqual([]);
    expect(unplaced).toEqual(['is not JSON', 'boom']);
  });
});

describe('request bodies', () => {
  it('leaves empty optional fields out of a new kernel', () => {
    expect(
      newKernelBody({ kernel_name: 'a', ssh_config: '', ssh: null, x: 0 })
    ).toEqual({ kernel_name: 'a', x: 0 });
  });

  it('patches only what changed, with null for an emptied field', () => {
    const original = {
      kernel_name: 'k',
      display_name: 'K',
      ssh_config: '/c',
      launch_timeout: 60,
      mount_local_on_remote: [{ local_path: '/a', remote_path: '/b' }]
    };
    const edited = {
      ...original,
      display_name: 'K2',
      ssh_config: undefined,
      mount_local_on_remote: []
    };
    expect(patchBody(schema, original, edited)).toEqual({
      display_name: 'K2',
      ssh_config: null,
      mount_local_on_remote: []
    });
    expect(patchBody(schema, original, { ...original })).toEqual({});
  });
});

describe('the ui schema', () => {
  it('keeps every schema field and locks the name when editing', () => {
    const ui = uiSchemaFor(schema, 'edit');
    expect(ui['ui:order']).toContain('*');
    expect(ui['ui:order']).not.toContain('language');
    expect(ui.kernel_name['ui:readonly']).toBe(true);
    expect(ui.ssh_host_alias['ui:widget']).toBe('hostAlias');
    expect(uiSchemaFor(schema, 'add').kernel_name['ui:readonly']).toBe(false);
  });
});

it('reports only missing fields client-side', () => {
  const errors = onlyRequiredErrors([
    { name: 'required', property: '.language', message: 'x', stack: '' },
    { name: 'pattern', property: '.kernel_name', message: 'y', stack: '' }
  ]);
  expect(errors).toHaveLength(1);
  expect(errors[0].message).toBe('is required');
});

it('suggests a valid kernel name', () => {
  expect(suggestKernelName('My Host', 'python3')).toBe('ssh-my-host-python3');
});
