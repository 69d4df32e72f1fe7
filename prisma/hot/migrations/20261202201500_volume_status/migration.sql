-- CreateTable
CREATE TABLE "VolumeStatus" (
    "volumeId" UUID NOT NULL,
    "nodeId" UUID NOT NULL,
    "usedBytes" BIGINT NOT NULL,
    "measuredAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "VolumeStatus_pkey" PRIMARY KEY ("volumeId")
);
