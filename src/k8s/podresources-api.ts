import * as grpc from '@grpc/grpc-js';
import { loadProtoPackage } from './grpc-proto.js';

/**
 * The part of the kubelet's PodResources API (k8s.io/kubelet/pkg/apis/podresources/v1) hostdev
 * reads: which devices of which resource each container of each pod was allocated. Written from
 * the published definition; the field numbers are the wire contract, and fields left out here are
 * skipped on the wire.
 */
const POD_RESOURCES_PROTO = `
syntax = "proto3";
package v1;

service PodResourcesLister {
  rpc List(ListPodResourcesRequest) returns (ListPodResourcesResponse) {}
}

message ListPodResourcesRequest {}

message ListPodResourcesResponse {
  repeated PodResources pod_resources = 1;
}

message PodResources {
  string name = 1;
  string namespace = 2;
  repeated ContainerResources containers = 3;
}

message ContainerResources {
  string name = 1;
  repeated ContainerDevices devices = 2;
}

message ContainerDevices {
  string resource_name = 1;
  repeated string device_ids = 2;
}
`;

/** One container's devices of one resource. */
export interface ContainerDevices {
  readonly namespace: string;
  readonly pod: string;
  readonly container: string;
  readonly resourceName: string;
  readonly deviceIds: readonly string[];
}

interface ListResponse {
  readonly pod_resources: readonly {
    readonly name: string;
    readonly namespace: string;
    readonly containers: readonly {
      readonly name: string;
      readonly devices: readonly { readonly resource_name: string; readonly device_ids: readonly string[] }[];
    }[];
  }[];
}

let lister: grpc.ServiceClientConstructor | null = null;

/** The PodResourcesLister service (its client; `.service` serves it, as a stand-in kubelet does in the tests). */
export function podResourcesLister(): grpc.ServiceClientConstructor {
  lister ??= loadProtoPackage<{ PodResourcesLister: grpc.ServiceClientConstructor }>(POD_RESOURCES_PROTO, ['v1']).PodResourcesLister;
  return lister;
}

/** PodResourcesLister/List on the kubelet's pod-resources socket: every container's devices, bounded by `timeoutMs`. */
export async function listPodDevices(socketPath: string, timeoutMs = 5_000): Promise<ContainerDevices[]> {
  const client = new (podResourcesLister())(`unix:${socketPath}`, grpc.credentials.createInsecure());
  try {
    const response = await new Promise<ListResponse>((resolve, reject) => {
      (client as unknown as { List: (req: object, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: ListResponse) => void) => void }).List(
        {},
        { deadline: Date.now() + timeoutMs },
        (error, reply) => (error ? reject(error) : resolve(reply)),
      );
    });
    return response.pod_resources.flatMap((pod) =>
      pod.containers.flatMap((container) =>
        container.devices.map((devices) => ({
          namespace: pod.namespace,
          pod: pod.name,
          container: container.name,
          resourceName: devices.resource_name,
          deviceIds: devices.device_ids,
        })),
      ),
    );
  } finally {
    client.close();
  }
}
