import type * as grpc from '@grpc/grpc-js';
import { loadProtoPackage } from './grpc-proto.js';

/**
 * The kubelet's device plugin API, v1beta1 (k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1), written
 * from its published definition: message and field numbers are the wire contract. Kept as text and
 * parsed at load, so the package needs no .proto file beside its JavaScript.
 */
export const DEVICE_PLUGIN_PROTO = `
syntax = "proto3";
package v1beta1;

service Registration {
  rpc Register(RegisterRequest) returns (Empty) {}
}

service DevicePlugin {
  rpc GetDevicePluginOptions(Empty) returns (DevicePluginOptions) {}
  rpc ListAndWatch(Empty) returns (stream ListAndWatchResponse) {}
  rpc GetPreferredAllocation(PreferredAllocationRequest) returns (PreferredAllocationResponse) {}
  rpc Allocate(AllocateRequest) returns (AllocateResponse) {}
  rpc PreStartContainer(PreStartContainerRequest) returns (PreStartContainerResponse) {}
}

message Empty {}

message DevicePluginOptions {
  bool pre_start_required = 1;
  bool get_preferred_allocation_available = 2;
}

message RegisterRequest {
  string version = 1;
  string endpoint = 2;
  string resource_name = 3;
  DevicePluginOptions options = 4;
}

message ListAndWatchResponse {
  repeated Device devices = 1;
}

message TopologyInfo {
  repeated NUMANode nodes = 1;
}

message NUMANode {
  int64 ID = 1;
}

message Device {
  string ID = 1;
  string health = 2;
  TopologyInfo topology = 3;
}

message PreStartContainerRequest {
  repeated string devices_ids = 1;
}

message PreStartContainerResponse {}

message PreferredAllocationRequest {
  repeated ContainerPreferredAllocationRequest container_requests = 1;
}

message ContainerPreferredAllocationRequest {
  repeated string available_deviceIDs = 1;
  repeated string must_include_deviceIDs = 2;
  int32 allocation_size = 3;
}

message PreferredAllocationResponse {
  repeated ContainerPreferredAllocationResponse container_responses = 1;
}

message ContainerPreferredAllocationResponse {
  repeated string deviceIDs = 1;
}

message AllocateRequest {
  repeated ContainerAllocateRequest container_requests = 1;
}

message ContainerAllocateRequest {
  repeated string devices_ids = 1;
}

message CDIDevice {
  string name = 1;
}

message AllocateResponse {
  repeated ContainerAllocateResponse container_responses = 1;
}

message ContainerAllocateResponse {
  map<string, string> envs = 1;
  repeated Mount mounts = 2;
  repeated DeviceSpec devices = 3;
  map<string, string> annotations = 4;
  repeated CDIDevice cdi_devices = 5;
}

message Mount {
  string container_path = 1;
  string host_path = 2;
  bool read_only = 3;
}

message DeviceSpec {
  string container_path = 1;
  string host_path = 2;
  string permissions = 3;
}
`;

export const HEALTHY = 'Healthy';
export const UNHEALTHY = 'Unhealthy';

export interface DeviceMessage {
  readonly ID: string;
  readonly health: string;
  readonly topology: { readonly nodes: readonly { readonly ID: string }[] } | null;
}

interface DeviceSpecMessage {
  readonly container_path: string;
  readonly host_path: string;
  readonly permissions: string;
}

export interface ContainerAllocateResponseMessage {
  readonly envs: Readonly<Record<string, string>>;
  readonly mounts: readonly never[];
  readonly devices: readonly DeviceSpecMessage[];
  readonly annotations: Readonly<Record<string, string>>;
  readonly cdi_devices: readonly { readonly name: string }[];
}

interface V1beta1 {
  readonly Registration: grpc.ServiceClientConstructor;
  readonly DevicePlugin: grpc.ServiceClientConstructor;
}

let loaded: V1beta1 | null = null;

/** The v1beta1 services (snake_case field names as in the .proto, int64 as strings). */
export function deviceplugin(): V1beta1 {
  loaded ??= loadProtoPackage<V1beta1>(DEVICE_PLUGIN_PROTO, ['v1beta1']);
  return loaded;
}
