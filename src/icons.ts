import { LabIcon } from '@jupyterlab/ui-components';

import sshpykSvgstr from '../style/icons/sshpyk.svg';

export const sshpykIcon = new LabIcon({
  name: 'sshpyk:remote-kernel',
  svgstr: sshpykSvgstr
});
