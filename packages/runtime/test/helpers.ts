import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { grpc } from '@tessera/runtime';

const require = createRequire(import.meta.url);

/** grpc.health.v1.Health client constructor, from grpc-health-check's own proto. */
export function healthClient(): grpc.ServiceClientConstructor {
  const def = protoLoader.loadSync(healthProtoPath, { keepCase: false, enums: String, defaults: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
  };
  return pkg.grpc.health.v1.Health;
}

/** grpc.reflection.v1.ServerReflection client constructor, from @grpc/reflection's proto. */
export function reflectionClient(): grpc.ServiceClientConstructor {
  const root = dirname(require.resolve('@grpc/reflection/package.json'));
  const def = protoLoader.loadSync(join(root, 'build/proto/grpc/reflection/v1/reflection.proto'), {
    keepCase: false,
    defaults: true,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    grpc: { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } };
  };
  return pkg.grpc.reflection.v1.ServerReflection;
}

export function closeClient(c: grpc.Client | undefined): void {
  c?.close();
}
