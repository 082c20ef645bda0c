"""A second gRPC stack against hostdev's device plugin: Python's grpcio, with message classes that
Debian's protoc generated from the same v1beta1 definition. Prints one JSON object per line.

  device_plugin_peer.py GENERATED_DIR client PLUGIN_SOCKET DEVICE_ID
      the kubelet's calls on a plugin: options, the first ListAndWatch answer, a preferred
      allocation of two, an Allocate of DEVICE_ID
  device_plugin_peer.py GENERATED_DIR kubelet KUBELET_SOCKET
      the kubelet's Registration service: prints the first Register it gets, then exits
"""
import json
import sys
import threading
from concurrent import futures

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
import deviceplugin_pb2 as pb  # noqa: E402
from google.protobuf.json_format import MessageToDict  # noqa: E402


def show(name, message):
    print(json.dumps({name: MessageToDict(message, preserving_proto_field_name=True)}), flush=True)


def client(socket, device_id):
    channel = grpc.insecure_channel("unix:" + socket)
    grpc.channel_ready_future(channel).result(timeout=10)

    def unary(method, request, reply):
        call = channel.unary_unary("/v1beta1.DevicePlugin/" + method, request_serializer=type(request).SerializeToString, response_deserializer=reply.FromString)
        return call(request, timeout=10)

    show("options", unary("GetDevicePluginOptions", pb.Empty(), pb.DevicePluginOptions))
    stream = channel.unary_stream("/v1beta1.DevicePlugin/ListAndWatch", request_serializer=pb.Empty.SerializeToString, response_deserializer=pb.ListAndWatchResponse.FromString)(pb.Empty(), timeout=10)
    first = next(stream)
    stream.cancel()
    show("list", first)
    ids = [device.ID for device in first.devices]
    preferred = pb.PreferredAllocationRequest(container_requests=[pb.ContainerPreferredAllocationRequest(available_deviceIDs=ids, allocation_size=2)])
    show("preferred", unary("GetPreferredAllocation", preferred, pb.PreferredAllocationResponse))
    allocate = pb.AllocateRequest(container_requests=[pb.ContainerAllocateRequest(devices_ids=[device_id])])
    show("allocate", unary("Allocate", allocate, pb.AllocateResponse))
    channel.close()


def kubelet(socket):
    got = threading.Event()

    def register(request, context):
        show("register", request)
        got.set()
        return pb.Empty()

    handler = grpc.method_handlers_generic_handler(
        "v1beta1.Registration",
        {"Register": grpc.unary_unary_rpc_method_handler(register, request_deserializer=pb.RegisterRequest.FromString, response_serializer=pb.Empty.SerializeToString)},
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port("unix:" + socket)
    server.start()
    print(json.dumps({"listening": socket}), flush=True)
    ok = got.wait(timeout=30)
    server.stop(grace=1).wait()
    sys.exit(0 if ok else 1)


if sys.argv[2] == "client":
    client(sys.argv[3], sys.argv[4])
else:
    kubelet(sys.argv[3])
