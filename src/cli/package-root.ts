/** The project folder, found from this module: dist/cli/ under Node, src/cli/ under Deno. */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
