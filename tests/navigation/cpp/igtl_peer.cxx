// A peer for interoperability tests, written against the OpenIGTLink C++ library (1.11).
//
//   igtl_peer send HOST PORT N   connect, send N TRANSFORMs "Tracker" (translation (i, 2i, 3i) mm,
//                                90 deg about z), then TDATA, POSITION, STATUS, STRING, POINT; close
//   igtl_peer recv HOST PORT N   connect, receive N messages, print one line each; exit
//   igtl_peer server N           listen on a free port (prints "PORT p"), accept one client,
//                                print N received messages, reply TRANSFORM, TDATA, STATUS; close
//
// Received lines: "TYPE DEVICE crc=ok|bad ts=SEC.NSEC values...", CRC checked by Unpack(1).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "igtlClientSocket.h"
#include "igtlMessageHeader.h"
#include "igtlOSUtil.h"
#include "igtlPointMessage.h"
#include "igtlPositionMessage.h"
#include "igtlServerSocket.h"
#include "igtlStatusMessage.h"
#include "igtlStringMessage.h"
#include "igtlTrackingDataMessage.h"
#include "igtlTransformMessage.h"

static void TestMatrix(int i, igtl::Matrix4x4& m) {
  igtl::IdentityMatrix(m);
  m[0][0] = 0; m[0][1] = -1; m[1][0] = 1; m[1][1] = 0;  // 90 deg about z
  m[0][3] = (float)i; m[1][3] = 2.0f * i; m[2][3] = 3.0f * i;
}

template <class T>
static int SendMsg(igtl::Socket* socket, typename T::Pointer& msg) {
  msg->Pack();
  return socket->Send(msg->GetPackPointer(), msg->GetPackSize());
}

static void SendTracking(igtl::Socket* socket, int n, const char* device) {
  igtl::TimeStamp::Pointer ts = igtl::TimeStamp::New();
  for (int i = 0; i < n; ++i) {
    igtl::TransformMessage::Pointer msg = igtl::TransformMessage::New();
    msg->SetDeviceName(device);
    igtl::Matrix4x4 m;
    TestMatrix(i, m);
    msg->SetMatrix(m);
    ts->GetTime();
    msg->SetTimeStamp(ts);
    SendMsg<igtl::TransformMessage>(socket, msg);
  }
  igtl::TrackingDataMessage::Pointer tdata = igtl::TrackingDataMessage::New();
  tdata->SetDeviceName("TrackerFrame");
  const char* names[2] = {"Needle", "Reference"};
  for (int k = 0; k < 2; ++k) {
    igtl::TrackingDataElement::Pointer e = igtl::TrackingDataElement::New();
    e->SetName(names[k]);
    e->SetType(k == 0 ? igtl::TrackingDataElement::TYPE_6D : igtl::TrackingDataElement::TYPE_TRACKER);
    igtl::Matrix4x4 m;
    TestMatrix(10 + k, m);
    e->SetMatrix(m);
    tdata->AddTrackingDataElement(e);
  }
  SendMsg<igtl::TrackingDataMessage>(socket, tdata);
}

static void SendOthers(igtl::Socket* socket) {
  igtl::PositionMessage::Pointer pos = igtl::PositionMessage::New();
  pos->SetDeviceName("Probe");
  pos->SetPackType(igtl::PositionMessage::ALL);
  pos->SetPosition(1.5f, -2.5f, 3.25f);
  pos->SetQuaternion(0.0f, 0.0f, 0.6f, 0.8f);
  SendMsg<igtl::PositionMessage>(socket, pos);

  igtl::StatusMessage::Pointer status = igtl::StatusMessage::New();
  status->SetDeviceName("Robot");
  status->SetCode(igtl::StatusMessage::STATUS_NOT_READY);
  status->SetSubCode(-42);
  status->SetErrorName("Homing");
  status->SetStatusString("axis 3 not homed");
  SendMsg<igtl::StatusMessage>(socket, status);

  igtl::StringMessage::Pointer str = igtl::StringMessage::New();
  str->SetDeviceName("Text");
  str->SetString("hello from C++");
  SendMsg<igtl::StringMessage>(socket, str);

  igtl::PointMessage::Pointer point = igtl::PointMessage::New();
  point->SetDeviceName("Targets");
  igtl::PointElement::Pointer p = igtl::PointElement::New();
  p->SetName("Nodule");
  p->SetGroupName("Target");
  p->SetRGBA(255, 0, 0, 255);
  p->SetPosition(56.4f, 86.3f, -116.0f);
  p->SetRadius(7.5f);
  p->SetOwner("CT");
  point->AddPointElement(p);
  SendMsg<igtl::PointMessage>(socket, point);
}

static void PrintMatrix(igtl::Matrix4x4& m) {
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c) std::printf(" %.6g", m[r][c]);
}

// Receives one message; prints a line; returns 0 on end of stream.
static int ReceiveOne(igtl::Socket* socket) {
  igtl::MessageHeader::Pointer header = igtl::MessageHeader::New();
  header->InitPack();
  int r = socket->Receive(header->GetPackPointer(), header->GetPackSize());
  if (r != header->GetPackSize()) return 0;
  header->Unpack();
  unsigned int sec = 0, frac = 0;
  header->GetTimeStamp(&sec, &frac);
  igtl::TimeStamp::Pointer ts = igtl::TimeStamp::New();
  header->GetTimeStamp(ts);
  unsigned int s = 0, ns = 0;
  ts->GetTimeStamp(&s, &ns);
  const char* type = header->GetDeviceType();
  std::printf("%s %s", type, header->GetDeviceName());
  igtl::MessageBase::Pointer body;
  if (std::strcmp(type, "TRANSFORM") == 0) body = igtl::TransformMessage::New();
  else if (std::strcmp(type, "TDATA") == 0) body = igtl::TrackingDataMessage::New();
  else if (std::strcmp(type, "POSITION") == 0) body = igtl::PositionMessage::New();
  else if (std::strcmp(type, "STATUS") == 0) body = igtl::StatusMessage::New();
  else if (std::strcmp(type, "STRING") == 0) body = igtl::StringMessage::New();
  else if (std::strcmp(type, "POINT") == 0) body = igtl::PointMessage::New();
  if (body.IsNull()) {
    socket->Skip(header->GetBodySizeToRead(), 0);
    std::printf(" skipped\n");
    std::fflush(stdout);
    return 1;
  }
  body->SetMessageHeader(header);
  body->AllocatePack();
  if (header->GetBodySizeToRead() > 0)
    socket->Receive(body->GetPackBodyPointer(), body->GetPackBodySize());
  int c = body->Unpack(1);
  bool ok = (c & igtl::MessageHeader::UNPACK_BODY) != 0;
  std::printf(" crc=%s ts=%u.%09u", ok ? "ok" : "bad", s, ns);
  if (ok) {
    if (std::strcmp(type, "TRANSFORM") == 0) {
      igtl::Matrix4x4 m;
      ((igtl::TransformMessage*)body.GetPointer())->GetMatrix(m);
      PrintMatrix(m);
    } else if (std::strcmp(type, "TDATA") == 0) {
      igtl::TrackingDataMessage* t = (igtl::TrackingDataMessage*)body.GetPointer();
      for (int i = 0; i < t->GetNumberOfTrackingDataElements(); ++i) {
        igtl::TrackingDataElement::Pointer e;
        t->GetTrackingDataElement(i, e);
        igtl::Matrix4x4 m;
        e->GetMatrix(m);
        std::printf(" | %s %d", e->GetName(), (int)e->GetType());
        PrintMatrix(m);
      }
    } else if (std::strcmp(type, "POSITION") == 0) {
      float p[3], q[4];
      igtl::PositionMessage* pm = (igtl::PositionMessage*)body.GetPointer();
      pm->GetPosition(p);
      pm->GetQuaternion(q);
      std::printf(" %g %g %g %g %g %g %g", p[0], p[1], p[2], q[0], q[1], q[2], q[3]);
    } else if (std::strcmp(type, "STATUS") == 0) {
      igtl::StatusMessage* st = (igtl::StatusMessage*)body.GetPointer();
      std::printf(" %d %lld %s|%s", st->GetCode(), (long long)st->GetSubCode(), st->GetErrorName(),
                  st->GetStatusString());
    } else if (std::strcmp(type, "STRING") == 0) {
      igtl::StringMessage* sm = (igtl::StringMessage*)body.GetPointer();
      std::printf(" %d %s", (int)sm->GetEncoding(), sm->GetString());
    } else if (std::strcmp(type, "POINT") == 0) {
      igtl::PointMessage* pt = (igtl::PointMessage*)body.GetPointer();
      for (int i = 0; i < pt->GetNumberOfPointElement(); ++i) {
        igtl::PointElement::Pointer e;
        pt->GetPointElement(i, e);
        float p[3];
        e->GetPosition(p);
        igtlUint8 rgba[4];
        e->GetRGBA(rgba);
        std::printf(" | %s %s %d %d %d %d %g %g %g %g %s", e->GetName(), e->GetGroupName(), rgba[0],
                    rgba[1], rgba[2], rgba[3], p[0], p[1], p[2], e->GetRadius(), e->GetOwner());
      }
    }
  }
  std::printf("\n");
  std::fflush(stdout);
  return 1;
}

int main(int argc, char* argv[]) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "send" && argc == 5) {
    igtl::ClientSocket::Pointer socket = igtl::ClientSocket::New();
    if (socket->ConnectToServer(argv[2], std::atoi(argv[3])) != 0) return 2;
    SendTracking(socket, std::atoi(argv[4]), "Tracker");
    SendOthers(socket);
    socket->CloseSocket();
    return 0;
  }
  if (mode == "recv" && argc == 5) {
    igtl::ClientSocket::Pointer socket = igtl::ClientSocket::New();
    if (socket->ConnectToServer(argv[2], std::atoi(argv[3])) != 0) return 2;
    for (int i = 0, n = std::atoi(argv[4]); i < n; ++i)
      if (!ReceiveOne(socket)) return 3;
    socket->CloseSocket();
    return 0;
  }
  if (mode == "server" && argc == 3) {
    igtl::ServerSocket::Pointer server = igtl::ServerSocket::New();
    if (server->CreateServer(0) < 0) return 2;
    std::printf("PORT %d\n", server->GetServerPort());
    std::fflush(stdout);
    igtl::ClientSocket::Pointer socket = server->WaitForConnection(10000);
    if (socket.IsNull()) return 4;
    for (int i = 0, n = std::atoi(argv[2]); i < n; ++i)
      if (!ReceiveOne(socket)) return 3;
    SendTracking(socket, 1, "FromCpp");
    igtl::StatusMessage::Pointer status = igtl::StatusMessage::New();
    status->SetDeviceName("CppServer");
    status->SetCode(igtl::StatusMessage::STATUS_OK);
    status->SetStatusString("bye");
    SendMsg<igtl::StatusMessage>(socket, status);
    socket->CloseSocket();
    server->CloseSocket();
    return 0;
  }
  std::fprintf(stderr, "usage: igtl_peer send HOST PORT N | recv HOST PORT N | server N\n");
  return 1;
}
