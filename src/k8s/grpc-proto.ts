import * as grpc from '@grpc/grpc-js';
import { fromJSON } from '@grpc/proto-loader';
import protobuf from 'protobufjs';

/**
 * Loads a gRPC package from .proto text kept in the source (so the package ships no .proto files):
 * snake_case field names as written, int64 as strings, defaults filled in.
 */
export function loadProtoPackage<T>(protoText: string, packagePath: readonly string[]): T {
  const root = protobuf.parse(protoText, { keepCase: true }).root;
  const definition = fromJSON(root.toJSON(), { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
  let namespace: unknown = grpc.loadPackageDefinition(definition);
  for (const part of packagePath) namespace = (namespace as Record<string, unknown>)[part];
  return namespace as T;
}
